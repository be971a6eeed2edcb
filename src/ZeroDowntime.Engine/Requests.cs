namespace ZeroDowntime.Engine;

/// <summary>What every request that starts a migration (and so registers a ledger row) carries.</summary>
public abstract record MigrationRequest
{
    /// <summary>The longest label the ledger takes: a release or build name, not a document.</summary>
    public const int MaxTagLength = 200;

    /// <summary>
    /// A caller-chosen label (e.g. "release-42") stored with the migration, so a later pipeline
    /// stage finds the migration an earlier one started (Get-Migration -Tag); null for none.
    /// </summary>
    public string? Tag { get; init; }
}

/// <summary>Rename a table, keeping the old name working through an updatable view until contract.</summary>
public sealed record TableRenameRequest(string Schema, string Table, string NewName) : MigrationRequest;

/// <summary>Which migrations Get-Migration returns.</summary>
public sealed record MigrationQuery
{
    public long? Id { get; init; }

    public string? Schema { get; init; }

    /// <summary>Matches the table's original or new name.</summary>
    public string? Table { get; init; }

    public bool ActiveOnly { get; init; }

    public bool IncludeEvents { get; init; }

    /// <summary>Only migrations labelled with this tag (exact).</summary>
    public string? Tag { get; init; }

    /// <summary>Only migrations of this column (original or new name, exact).</summary>
    public string? Column { get; init; }

    /// <summary>Only migrations of these operations (RenameColumn, AddColumn, ...; any casing); empty: any.</summary>
    public IReadOnlyList<string> Operations { get; init; } = Array.Empty<string>();

    /// <summary>Only migrations in these phases; empty: any.</summary>
    public IReadOnlyList<Planning.MigrationPhase> Phases { get; init; } = Array.Empty<Planning.MigrationPhase>();
}

/// <summary>How a column rename keeps both names working until contract.</summary>
public enum RenameStrategy
{
    /// <summary>Add the new column, sync it by trigger, backfill, then drop the old one: no client change at all.</summary>
    Copy,

    /// <summary>Serve the new name through a view in a version schema: zero copy, the new application version sets search_path.</summary>
    View,
}

/// <summary>Rename a column without breaking the running application.</summary>
public sealed record ColumnRenameRequest(string Schema, string Table, string Column, string NewName) : MigrationRequest
{
    public RenameStrategy Strategy { get; init; } = RenameStrategy.Copy;

    /// <summary>
    /// View strategy: the version schema to put the view in. Name one per application release to
    /// rename columns of several tables together; when null it is derived from the table
    /// (zdt_v_&lt;schema&gt;_&lt;table&gt;), so renames of one table without it share one view.
    /// </summary>
    public string? VersionSchema { get; init; }
}

/// <summary>Change a column's type without a long lock: in place when the server needs no rewrite, else by a shadow column.</summary>
public sealed record ColumnTypeChangeRequest(string Schema, string Table, string Column, string Type) : MigrationRequest
{
    /// <summary>Old to new value, an expression over the column's name (as ALTER COLUMN TYPE ... USING).</summary>
    public string? Using { get; init; }

    /// <summary>New to old value, an expression over the column's name.</summary>
    public string? ReverseUsing { get; init; }

    /// <summary>Point the other tables' foreign keys that reference the column at the new one in the same migration.</summary>
    public bool Cascade { get; init; }

    /// <summary>Fail the application's writes of a value that does not convert (default: keep the new column NULL for them and count them).</summary>
    public bool RejectUnconvertibleWrites { get; init; }
}

/// <summary>Which finished migrations Remove-MigrationHistory takes out of the ledger.</summary>
/// <param name="OlderThan">Only migrations whose last change (their completion, undo or failure) is more than this long ago, by the server's clock.</param>
public sealed record HistoryRemovalRequest(TimeSpan OlderThan)
{
    /// <summary>Only this migration; it must be finished (else MigrationNotFinished).</summary>
    public long? Id { get; init; }

    /// <summary>Only migrations labelled with this tag (exact).</summary>
    public string? Tag { get; init; }
}
