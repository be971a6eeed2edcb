namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>An object of the old column rebuilt on the new one, and everything the swap must carry over.</summary>
/// <param name="Kind">What it is.</param>
/// <param name="Original">The name of the object on the old column.</param>
/// <param name="Building">The name it has while both columns exist.</param>
/// <param name="Final">The name it gets at contract (the old column name replaced by the new one, or the original).</param>
/// <param name="Definition">How it is built on the new column (CREATE INDEX CONCURRENTLY, a constraint definition, CREATE STATISTICS).</param>
internal sealed record CopiedObject(CopiedObjectKind Kind, string Original, string Building, string Final, string Definition)
{
    /// <summary>For a plain index: how to build the original again (CONCURRENTLY), should an undo need it.</summary>
    public string? OriginalDefinition { get; init; }

    /// <summary>
    /// Built at contract instead of expand: a UNIQUE NULLS NOT DISTINCT index cannot be built while
    /// rows not backfilled yet all hold NULL in the new column (they would be duplicates).
    /// </summary>
    public bool BuildAtContract { get; init; }

    /// <summary>For a unique constraint: what follows USING INDEX (DEFERRABLE [INITIALLY DEFERRED]).</summary>
    public string AttachOptions { get; init; } = "";

    /// <summary>The original's comment (an index's or a statistics object's), set on the copy.</summary>
    public string? Comment { get; init; }

    /// <summary>The original index is the table's REPLICA IDENTITY: the copy becomes it in the swap.</summary>
    public bool ReplicaIdentity { get; init; }

    /// <summary>The original index carries the table's CLUSTER mark: the copy takes it in the swap.</summary>
    public bool Clustered { get; init; }

    /// <summary>For a referencing foreign key: the table it is on (its schema is <see cref="ObjectSchema"/>).</summary>
    public string? OnTable { get; init; }

    /// <summary>For a statistics object or a referencing foreign key: its schema (it need not be the table's) and its statistics target.</summary>
    public string? ObjectSchema { get; init; }

    public int StatisticsTarget { get; init; } = -1;
}
