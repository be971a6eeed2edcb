using System.Text.Json.Serialization;

namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// What a column copy rebuilds on the new column. Stored in the ledger by name (the names are the
/// strings earlier versions stored, so a migration expanded by them still reads back).
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<CopiedObjectKind>))]
internal enum CopiedObjectKind
{
    /// <summary>An index that backs no constraint (plain, unique, partial, expression).</summary>
    Index,

    /// <summary>A UNIQUE constraint: its index is built concurrently, then attached USING INDEX.</summary>
    Unique,

    /// <summary>A CHECK constraint, added NOT VALID and validated at contract.</summary>
    Check,

    /// <summary>A foreign key from the column, added NOT VALID and validated at contract.</summary>
    ForeignKey,

    /// <summary>An extended statistics object (CREATE STATISTICS).</summary>
    Statistics,

    /// <summary>
    /// The primary key (type change only): its unique index is built concurrently at expand, and the
    /// contract's swap drops the old constraint and adds it again USING that index.
    /// </summary>
    PrimaryKey,

    /// <summary>
    /// A foreign key of another table that references the column (type change with -Cascade): added
    /// on the new column NOT VALID and validated at contract, once the backfill has filled it; the
    /// swap drops the original and gives the copy its name.
    /// </summary>
    IncomingForeignKey,
}

internal static class CopiedObjectKindExtensions
{
    /// <summary>Objects that are relations of their own (renamed with ALTER INDEX, named in the schema's namespace).</summary>
    public static bool IsIndex(this CopiedObjectKind kind) => kind is CopiedObjectKind.Index or CopiedObjectKind.Unique or CopiedObjectKind.PrimaryKey;

    /// <summary>Table constraints added NOT VALID at expand (named in the table's namespace of constraints).</summary>
    public static bool IsNotValidConstraint(this CopiedObjectKind kind) => kind is CopiedObjectKind.Check or CopiedObjectKind.ForeignKey;

    public static string Describe(this CopiedObjectKind kind) => kind switch
    {
        CopiedObjectKind.Index => "index",
        CopiedObjectKind.Unique => "unique constraint",
        CopiedObjectKind.Check => "check constraint",
        CopiedObjectKind.ForeignKey => "foreign key",
        CopiedObjectKind.Statistics => "statistics object",
        CopiedObjectKind.PrimaryKey => "primary key",
        CopiedObjectKind.IncomingForeignKey => "referencing foreign key",
        _ => kind.ToString(),
    };
}
