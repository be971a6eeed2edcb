namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// What every column copy records in the ledger at expand besides its own request: the column's
/// identity, its default and NOT NULL, the sync function's and triggers' names, and the copies of
/// its dependent objects. The property names are those the rename stored before this was shared,
/// so migrations expanded by earlier versions read back unchanged.
/// </summary>
internal abstract record ColumnCopySpec
{
    public uint TableOid { get; init; }

    public short ColumnNumber { get; init; }

    /// <summary>The old column's default, schema-qualified (so it means the same inside the trigger whatever the search_path).</summary>
    public string? OldDefault { get; init; }

    public bool OldNotNull { get; init; }

    public string FunctionSchema { get; init; } = "";

    public string FunctionName { get; init; } = "";

    /// <summary>The trigger of INSERT and UPDATE OF the old column.</summary>
    public string TriggerName { get; init; } = "";

    /// <summary>The trigger of UPDATE OF the new column.</summary>
    public string NewNameTriggerName { get; init; } = "";

    public IReadOnlyList<CopiedObject> Copies { get; init; } = Array.Empty<CopiedObject>();

    /// <summary>
    /// The schemas of the sync function's <c>SET search_path</c> after pg_catalog (those of the
    /// column's type, whose operators it needs); null for a copy whose conversion is user-written SQL
    /// that resolves through the writer's search_path, and for migrations expanded before this existed.
    /// </summary>
    public IReadOnlyList<string>? SyncSearchPath { get; init; }
}
