using System.Diagnostics;
using System.Text.RegularExpressions;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Support;

/// <summary>
/// What <c>pg_dump --schema-only --table</c> says about a table, normalised so that a table changed
/// by the module and a twin changed by the plain DDL can be compared as text. Put the two in
/// schemas of their own under the same table name: the schema name is replaced by <c>S</c>.
/// Normalised, and nothing else: comment, SET and psql meta-command lines (\\restrict's random key), statement order (pg_dump orders by name),
/// the order of the lines of CREATE TABLE and of a statistics object's columns (a copy adds its column at the end), and, through
/// <paramref name="names"/>, generated object names.
/// </summary>
public static class PgDumpShape
{
    /// <summary>The table's dump as sorted, normalised statements, one per line group.</summary>
    public static async Task<string> OfAsync(TestDatabase db, string schema, string table, Func<string, string>? names = null)
    {
        // --table leaves out extended statistics (schema-level objects): they are taken from a
        // dump of the schema, so put nothing but the table's statistics there.
        var dump = await DumpAsync(db, "--table", $"{schema}.{table}");
        var statistics = (await DumpAsync(db, "--schema", schema)).Split(";\n").Where(s => s.Contains(" STATISTICS ", StringComparison.Ordinal) && !s.Contains("ALTER TABLE", StringComparison.Ordinal));
        var statements = new List<string>();
        foreach (var raw in dump.Split(";\n", StringSplitOptions.RemoveEmptyEntries).Concat(statistics))
        {
            var lines = raw.Split('\n')
                .Where(l => l.Length > 0 && !l.StartsWith("--", StringComparison.Ordinal) && !l.StartsWith("SET ", StringComparison.Ordinal) && !l.StartsWith("SELECT pg_catalog.set_config", StringComparison.Ordinal) && !l.StartsWith('\\'))
                .ToList();
            if (lines.Count == 0)
            {
                continue;
            }

            var text = string.Join("\n", lines);
            text = Regex.Replace(text, $@"(?<![\w""]){Regex.Escape(schema)}\.", "S.");
            text = names?.Invoke(text) ?? text;
            if (text.StartsWith("CREATE TABLE ", StringComparison.Ordinal))
            {
                text = SortTableBody(text);
            }
            else if (text.StartsWith("CREATE STATISTICS ", StringComparison.Ordinal))
            {
                text = SortStatisticsTargets(text);
            }

            statements.Add(text.TrimEnd(';'));
        }

        statements.Sort(StringComparer.Ordinal);
        return string.Join(";\n", statements) + ";";
    }

    /// <summary>
    /// Names PostgreSQL generates (table_column_suffix) carry the column's name: a plain RENAME COLUMN
    /// leaves them as they were, the copy strategy gives its copies the new name. This rewrites the
    /// old name where it is an underscore-separated part of a longer name (orders_address_idx), never
    /// a bare column reference (address).
    /// </summary>
    public static Func<string, string> ColumnInNames(string oldColumn, string newColumn)
        => text => Regex.Replace(text, $@"(?<=[A-Za-z0-9]_){Regex.Escape(oldColumn)}(?=_|\b)", newColumn);

    private static string SortTableBody(string statement)
    {
        var open = statement.IndexOf("(\n", StringComparison.Ordinal);
        var close = statement.LastIndexOf("\n)", StringComparison.Ordinal);
        if (open < 0 || close < open)
        {
            return statement;
        }

        var body = statement[(open + 2)..close].Split('\n').Select(l => l.TrimEnd(',')).OrderBy(l => l, StringComparer.Ordinal);
        return statement[..(open + 2)] + string.Join(",\n", body) + statement[close..];
    }

    /// <summary>A statistics object's columns are a set that PostgreSQL prints in column order, which a copy changes.</summary>
    private static string SortStatisticsTargets(string statement)
    {
        var on = statement.IndexOf(" ON ", StringComparison.Ordinal);
        var from = statement.LastIndexOf(" FROM ", StringComparison.Ordinal);
        if (on < 0 || from < on)
        {
            return statement;
        }

        var items = new List<string>();
        var depth = 0;
        var start = on + 4;
        for (var i = start; i < from; i++)
        {
            depth += statement[i] == '(' ? 1 : statement[i] == ')' ? -1 : 0;
            if (depth == 0 && statement[i] == ',')
            {
                items.Add(statement[start..i].Trim());
                start = i + 1;
            }
        }

        items.Add(statement[start..from].Trim());
        items.Sort(StringComparer.Ordinal);
        return statement[..(on + 4)] + string.Join(", ", items) + statement[from..];
    }

    private static async Task<string> DumpAsync(TestDatabase db, string selector, string name)
    {
        var server = db.Server;
        var binDirectory = PostgresBinaries.FindBinDirectory();
        var pgDump = binDirectory is not null && File.Exists(Path.Combine(binDirectory, "pg_dump")) ? Path.Combine(binDirectory, "pg_dump") : "pg_dump";
        var start = new ProcessStartInfo(server.ContainerImage is null ? pgDump : "docker")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (server.ContainerImage is not null)
        {
            // pg_dump refuses a server newer than itself: a container's server is dumped by the
            // pg_dump of its own image, on the host's network (the server listens on 127.0.0.1).
            foreach (var argument in new[] { "run", "--rm", "--network", "host", "-e", "PGPASSWORD", "--entrypoint", "pg_dump", server.ContainerImage })
            {
                start.ArgumentList.Add(argument);
            }
        }

        foreach (var argument in new[] { "--schema-only", "--no-owner", selector, name, "--host", server.Host, "--port", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--username", server.Username, "--dbname", db.DatabaseName })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["PGPASSWORD"] = server.Password;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("pg_dump did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"pg_dump failed: {await error}");
        return await output;
    }
}
