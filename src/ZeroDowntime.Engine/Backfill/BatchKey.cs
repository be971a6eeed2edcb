using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Backfill;

/// <summary>
/// How batches walk a table: by a key (the primary key, else a unique index over NOT NULL columns
/// without predicate or expressions) in keyset order, or by ctid page ranges when the table has no
/// such key. Key values travel as text and are cast back with the column's exact type, so any
/// key type (bigint, uuid, text, timestamps, composites of them) works the same way.
/// </summary>
internal sealed record BatchKey(IReadOnlyList<string> Columns, IReadOnlyList<string> Types)
{
    public bool IsCtid => Columns.Count == 0;

    public static BatchKey Ctid { get; } = new(Array.Empty<string>(), Array.Empty<string>());

    public static BatchKey Choose(TableInfo table)
    {
        if (table.PrimaryKey is { } pk)
        {
            return FromColumns(table, pk.Columns);
        }

        var unique = table.Indexes
            .Where(i => i.IsPlainUnique && i.KeyColumns.All(n => table.ColumnByNumber(n).NotNull))
            .OrderBy(i => i.KeyColumns.Count)
            .ThenBy(i => i.Name, StringComparer.Ordinal)
            .FirstOrDefault();
        return unique is null ? Ctid : FromColumns(table, unique.KeyColumns);
    }

    /// <summary>
    /// The key a backfill of <paramref name="table"/> walks, or NoBatchKey when there is none it can
    /// use: without a primary key or unique NOT NULL key the walk is by ctid ranges, which needs
    /// PostgreSQL 14 (TID range scans). Operations ask at planning, before anything changes.
    /// </summary>
    public static BatchKey RequireWalkable(TableInfo table, int serverVersion, string why)
    {
        var key = Choose(table);
        if (key.IsCtid && serverVersion < 140000)
        {
            throw new ZdtException(
                ErrorIds.NoBatchKey,
                ErrorKind.InvalidOperation,
                $"{why}, and {table.QualifiedName} has no primary key or unique NOT NULL key to walk it by (walking by ctid needs PostgreSQL 14 or later). Add a key first; nothing was changed.")
            { TargetObject = table.QualifiedName };
        }

        return key;
    }
    /// <summary>"(a, b)": the key as a row value.</summary>
    public string RowExpression(string? alias = null)
    {
        var prefix = alias is null ? "" : alias + ".";
        return "(" + string.Join(", ", Columns.Select(c => prefix + Ident.Quote(c))) + ")";
    }

    /// <summary>"($1::bigint, $2::text)": parameters cast back to the key's types.</summary>
    public string ParameterRow(int firstParameter)
        => "(" + string.Join(", ", Types.Select((t, i) => $"${firstParameter + i}::{t}")) + ")";

    public string OrderBy(string? alias = null)
        => string.Join(", ", Columns.Select(c => (alias is null ? "" : alias + ".") + Ident.Quote(c)));

    /// <summary>"a::text, b::text": the key as text columns, to keep as a checkpoint.</summary>
    public string AsText(string? alias = null)
        => string.Join(", ", Columns.Select(c => (alias is null ? "" : alias + ".") + Ident.Quote(c) + "::text"));

    public override string ToString() => IsCtid ? "ctid" : RowExpression();

    private static BatchKey FromColumns(TableInfo table, IReadOnlyList<short> numbers)
    {
        var columns = numbers.Select(table.ColumnByNumber).ToList();
        return new BatchKey(columns.Select(c => c.Name).ToList(), columns.Select(c => c.Type).ToList());
    }
}
