using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// The search_path the new application version connects with (version schema first, then the
/// table's own schema), written out the way the common clients take it. Each form is exact: a
/// name that is not a plain lower-case identifier is double-quoted inside search_path, and the
/// result is escaped for the client's own syntax.
/// </summary>
internal sealed partial record SearchPathSetting(IReadOnlyList<string> Schemas)
{
    /// <summary>The value of search_path, e.g. zdt_v1,public.</summary>
    public string Value => string.Join(",", Schemas.Select(Element));

    /// <summary>For libpq (psql, psycopg, pgx, ...) connection strings: options=-csearch_path=zdt_v1,public.</summary>
    public string Libpq
    {
        get
        {
            // The server splits options at spaces unless escaped with a backslash.
            var option = "-csearch_path=" + Value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(" ", "\\ ", StringComparison.Ordinal);
            var plain = option.All(c => c is not (' ' or '\'' or '\\'));
            return plain ? "options=" + option : "options='" + option.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
        }
    }

    /// <summary>For Npgsql connection strings: Search Path=zdt_v1,public.</summary>
    public string Npgsql => new NpgsqlConnectionStringBuilder { SearchPath = Value }.ConnectionString;

    /// <summary>For the PostgreSQL JDBC driver's URL: currentSchema=zdt_v1,public.</summary>
    public string Jdbc => "currentSchema=" + string.Join(",", Schemas.Select(s => Uri.EscapeDataString(Element(s))));

    /// <summary>For a session or a role: SET search_path = zdt_v1, public.</summary>
    public string Sql => "SET search_path = " + string.Join(", ", Schemas.Select(Element));

    public IReadOnlyDictionary<string, string> ToDetails() => new Dictionary<string, string>
    {
        ["SearchPath"] = Value,
        ["Libpq"] = Libpq,
        ["Npgsql"] = Npgsql,
        ["Jdbc"] = Jdbc,
        ["Sql"] = Sql,
    };

    /// <summary>One line for verbose output.</summary>
    public string Describe()
        => new StringBuilder()
            .Append("The new application version must connect with search_path ").Append(Value)
            .Append(": libpq/psql ").Append(Libpq)
            .Append("; Npgsql ").Append(Npgsql)
            .Append("; JDBC ").Append(Jdbc)
            .Append("; or in SQL ").Append(Sql).Append('.')
            .ToString();

    /// <summary>search_path folds unquoted names to lower case, like SQL does; quote anything else.</summary>
    private static string Element(string schema)
        => PlainName().IsMatch(schema) ? schema : "\"" + schema.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    [GeneratedRegex("^[a-z_][a-z0-9_$]*$")]
    private static partial Regex PlainName();
}
