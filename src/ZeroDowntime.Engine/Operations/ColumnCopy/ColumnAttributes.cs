using System.Globalization;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>The per-column settings a plain ALTER keeps and a new column must be given: comment, statistics target, storage, compression, options.</summary>
internal static class ColumnAttributes
{
    /// <param name="table">The qualified table.</param>
    /// <param name="source">The column whose settings are copied.</param>
    /// <param name="target">The quoted new column.</param>
    /// <param name="storage">Whether storage and compression are copied (not to a column of another type, which takes its type's own, as ALTER COLUMN TYPE gives it).</param>
    public static IEnumerable<string> CopyStatements(string table, ColumnInfo source, string target, bool storage = true)
    {
        if (source.Comment is not null)
        {
            yield return $"COMMENT ON COLUMN {table}.{target} IS {Ident.Literal(source.Comment)}";
        }

        if (source.StatisticsTarget >= 0)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"ALTER TABLE {table} ALTER COLUMN {target} SET STATISTICS {source.StatisticsTarget}");
        }

        if (storage && source.Storage is not null)
        {
            yield return $"ALTER TABLE {table} ALTER COLUMN {target} SET STORAGE {Keyword(source.Storage, "PLAIN", "EXTERNAL", "EXTENDED", "MAIN")}";
        }

        if (storage && source.Compression is not null)
        {
            yield return $"ALTER TABLE {table} ALTER COLUMN {target} SET COMPRESSION {Keyword(source.Compression, "pglz", "lz4")}";
        }

        if (source.Options.Count > 0)
        {
            // attoptions are name=value pairs of numbers (n_distinct, n_distinct_inherited).
            yield return $"ALTER TABLE {table} ALTER COLUMN {target} SET ({string.Join(", ", source.Options.Select(Option))})";
        }
    }

    private static string Keyword(string value, params string[] allowed)
        => allowed.Contains(value, StringComparer.Ordinal) ? value : throw new InvalidOperationException($"Unexpected catalog value '{value}'.");

    private static string Option(string option)
    {
        var at = option.IndexOf('=', StringComparison.Ordinal);
        var name = option[..at];
        var value = option[(at + 1)..];
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
        {
            throw new InvalidOperationException($"Unexpected column option '{option}'.");
        }

        return $"{Ident.Quote(name)} = {value}";
    }
}
