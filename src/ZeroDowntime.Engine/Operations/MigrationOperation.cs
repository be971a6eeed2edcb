using Npgsql;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// The shape every operation (rename table, rename column, add column, ...) has: one file each,
/// saying what it plans for expand, backfill, contract and undo. Plans are derived from the live
/// catalog each time, so running a phase again after a crash picks up where the schema stands.
/// Operations only plan; the engine runs the plans through the ledger and the lock-safe executor.
/// </summary>
internal abstract class MigrationOperation
{
    /// <summary>The ledger's operation name, e.g. "RenameTable".</summary>
    public abstract string Kind { get; }

    /// <summary>The phase Complete-Contract starts from (Expanded when there is nothing to backfill).</summary>
    public abstract MigrationPhase ContractFrom { get; }

    /// <summary>Validates the request against the catalog and plans the expand DDL. Changes nothing.</summary>
    public abstract Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct);

    public abstract Task<PhaseDesign> PlanContractAsync(PlanningContext context, LedgerRow migration, CancellationToken ct);

    public abstract Task<PhaseDesign> PlanUndoAsync(PlanningContext context, LedgerRow migration, CancellationToken ct);

    /// <summary>
    /// What the caller asked for, as text to compare: the request's own arguments (table, column,
    /// new name, type, ...), none of what planning found. Two operations with the same identity are
    /// the same request, so running it again returns the migration the first run started (a
    /// pipeline stage run twice). Null: the operation has no such notion (one shots).
    /// </summary>
    public virtual string? RequestIdentity => null;

    /// <summary>What the migration object shows about this operation (view names, settings, ...).</summary>
    public abstract IReadOnlyDictionary<string, string> Describe(LedgerRow migration);

    /// <summary>What a backfill writes for this migration, or null when the operation needs none.</summary>
    public virtual BackfillDesign? PlanBackfill(TableInfo table, LedgerRow migration) => null;

    /// <summary>
    /// The tables the backfill walks, in order (a type change with -Cascade also fills the
    /// referencing tables' shadow columns); <see cref="PlanBackfill"/> is asked for each.
    /// </summary>
    public virtual IReadOnlyList<uint> BackfillTables(LedgerRow migration) => new[] { migration.TableOid };

    /// <summary>Whether Invoke-Backfill may run from this phase.</summary>
    public virtual bool CanBackfillFrom(MigrationPhase phase)
        => phase is MigrationPhase.Expanded or MigrationPhase.Backfilling or MigrationPhase.Backfilled;

    /// <summary>
    /// Checks that must hold right before the contract DDL (e.g. parity of a copied column); runs
    /// under the migration's advisory lock and throws to refuse. Default: none.
    /// </summary>
    public virtual Task BeforeContractAsync(PlanningContext context, LedgerRow migration, MigrationEngine engine, CancellationToken ct) => Task.CompletedTask;

    /// <summary>Whether Undo-Migration may run from this phase.</summary>
    public virtual bool CanUndoFrom(MigrationPhase phase)
        => phase is MigrationPhase.Expanding or MigrationPhase.Expanded or MigrationPhase.Backfilling
            or MigrationPhase.Backfilled or MigrationPhase.Verified or MigrationPhase.Undoing;
}

/// <summary>What planning needs: a connection for catalog reads and the server's version.</summary>
internal sealed record PlanningContext(NpgsqlConnection Connection, CatalogReader Catalog, MigrationLedger Ledger, int ServerVersion, EngineOptions Options)
{
    /// <summary>
    /// lock_timeout for CONCURRENTLY steps: their waits (for older transactions, under SHARE UPDATE
    /// EXCLUSIVE) never make application queries queue, so they may wait as long as the retry budget
    /// instead of failing, and leaving an INVALID index to clean up, at every transaction longer
    /// than the short DDL lock timeout.
    /// </summary>
    public TimeSpan ConcurrentLockTimeout => Options.LockRetryTimeout > Options.LockTimeout ? Options.LockRetryTimeout : Options.LockTimeout;

    /// <summary>security_invoker views exist from PostgreSQL 15 on.</summary>
    public bool SupportsSecurityInvokerViews => ServerVersion >= 150000;
}

/// <summary>The expand plan of a new migration and what the ledger records about it.</summary>
internal sealed record ExpandDesign(
    TableInfo Table,
    string Summary,
    IReadOnlyList<DdlStep> Steps,
    string? Column,
    string? NewName,
    string Strategy,
    string SpecJson,
    long? RowsEstimated)
{
    /// <summary>Other tables the migration changes and holds until it ends (recorded in its spec too, as <see cref="Ledger.MigrationLedger.HeldTablesKey"/>).</summary>
    public IReadOnlyList<uint> HeldTableOids { get; init; } = Array.Empty<uint>();
}

/// <summary>The plan of a later phase (contract, undo).</summary>
internal sealed record PhaseDesign(string Target, string Summary, IReadOnlyList<DdlStep> Steps);
