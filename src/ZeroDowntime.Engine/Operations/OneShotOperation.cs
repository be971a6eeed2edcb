using Npgsql;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// An operation that runs to its end in one call: create or drop an index, add a constraint, raw
/// DDL. Nothing of the old shape has to keep working for a while, so there are no later phases:
/// it never holds its table's one active-migration slot (it may run while a migration of the table
/// is active, e.g. to index a column being added), needs no Complete-Contract and has no
/// Undo-Migration. It still runs under the table's phase lock and the lock-safe executor, and the
/// ledger records it, once it has run, as Completed (or Failed, with the reason). Its expand plan
/// is the whole change; when a step fails, <see cref="PlanRollbackAsync"/> removes what the earlier
/// steps made (an INVALID index, a NOT VALID constraint), so a failure leaves nothing behind.
/// </summary>
internal abstract class OneShotOperation : MigrationOperation
{
    public sealed override MigrationPhase ContractFrom => MigrationPhase.Expanded;

    /// <summary>What a failed run leaves is removed at once by the rollback; a completed one is not a migration to undo.</summary>
    public sealed override bool CanUndoFrom(MigrationPhase phase) => false;

    /// <summary>Warnings about the planned SQL (e.g. a known dangerous form of raw DDL), for the caller to show.</summary>
    public IReadOnlyList<string> Warnings { get; protected set; } = Array.Empty<string>();

    public sealed override Task<PhaseDesign> PlanContractAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
        => throw NoLaterPhases(migration);

    public sealed override Task<PhaseDesign> PlanUndoAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
        => throw NoLaterPhases(migration);

    /// <summary>
    /// The steps that remove what a failed run left, planned from the live catalog (so only what
    /// exists is dropped, and running it twice is harmless). Empty when a failure leaves nothing.
    /// </summary>
    public abstract Task<IReadOnlyList<DdlStep>> PlanRollbackAsync(PlanningContext context, CancellationToken ct);

    /// <summary>Checks the result once every step ran (e.g. that the index is valid); throws to fail the run, which is then rolled back.</summary>
    public virtual Task VerifyAsync(PlanningContext context, CancellationToken ct) => Task.CompletedTask;

    /// <summary>
    /// Turns a failure into an error that says why in terms of the data (how many rows violate the
    /// new constraint, how many keys are duplicated); null keeps the original error.
    /// </summary>
    public virtual Task<ZdtException?> ExplainFailureAsync(PlanningContext context, Exception failure, CancellationToken ct) => Task.FromResult<ZdtException?>(null);

    /// <summary>The server error behind a failure, if there is one.</summary>
    protected static PostgresException? ServerError(Exception failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (e is PostgresException pg)
            {
                return pg;
            }
        }

        return null;
    }

    /// <summary>Runs a count query on the planning connection.</summary>
    protected static async Task<long> CountAsync(PlanningContext context, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, context.Connection);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    private ZdtException NoLaterPhases(LedgerRow migration)
        => new(
            "PhaseOutOfOrder",
            ErrorKind.InvalidOperation,
            $"Migration {migration.Id} ({Kind}) ran to its end in one step; it has no contract or undo phase. Nothing was changed.")
        { TargetObject = migration.Id };
}
