using Npgsql;
using NpgsqlTypes;

namespace ZeroDowntime.Engine.Sql;

/// <summary>
/// The search_path a function the module creates (a sync trigger function) runs with. Without a
/// SET clause, a function body resolves unqualified operators and functions through the search_path
/// of whoever fires it: a session (or a database default, or a role setting) with a schema listed
/// before pg_catalog would make our trigger call that schema's <c>=</c> or <c>coalesce</c> instead.
/// </summary>
internal static class FunctionSearchPath
{
    /// <summary>
    /// <c>SET search_path = pg_catalog, &lt;schemas&gt;, pg_temp</c>, for CREATE FUNCTION (between
    /// LANGUAGE and AS). pg_catalog first, so no built-in can be shadowed; then the schemas whose
    /// operators the body needs (those of the column types it compares: an extension type's
    /// <c>=</c> lives in the extension's schema); pg_temp last, as otherwise it is searched first
    /// for relations and types.
    /// </summary>
    public static string SetClause(IEnumerable<string> schemas)
    {
        var path = new List<string> { "pg_catalog" };
        path.AddRange(schemas.Where(s => s is not ("pg_catalog" or "pg_temp")).Distinct(StringComparer.Ordinal).Select(Ident.Quote));
        path.Add("pg_temp");
        return "SET search_path = " + string.Join(", ", path);
    }

    /// <summary>
    /// The schemas of the given columns' types, and of a domain's base type, other than
    /// pg_catalog, in column order: what <see cref="SetClause"/> needs for a body that compares
    /// those columns.
    /// </summary>
    public static async Task<IReadOnlyList<string>> TypeSchemasAsync(NpgsqlConnection connection, uint tableOid, IReadOnlyCollection<string> columns, CancellationToken ct)
    {
        const string sql = """
            SELECT DISTINCT ON (n.nspname) n.nspname, a.attnum
            FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_catalog.pg_type b ON b.oid = t.typbasetype
            LEFT JOIN pg_catalog.pg_type e ON e.oid = COALESCE(NULLIF(b.typelem, 0), NULLIF(t.typelem, 0))
            JOIN pg_catalog.pg_namespace n ON n.oid IN (t.typnamespace, b.typnamespace, e.typnamespace)
            WHERE a.attrelid = $1 AND a.attname = ANY ($2) AND n.nspname <> 'pg_catalog'
            ORDER BY n.nspname, a.attnum
            """;
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = tableOid, NpgsqlDbType = NpgsqlDbType.Oid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = columns.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        var found = new List<(string Schema, short Column)>();
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            found.Add((reader.GetString(0), reader.GetInt16(1)));
        }

        return found.OrderBy(f => f.Column).ThenBy(f => f.Schema, StringComparer.Ordinal).Select(f => f.Schema).ToList();
    }
}
