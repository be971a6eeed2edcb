using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine;

/// <summary>The backfill phase: plan (what -WhatIf shows: one batch's SQL) and run.</summary>
public sealed partial class MigrationEngine
{
    public async Task<PhasePlan> PlanBackfillAsync(long migrationId, CancellationToken cancellationToken = default)
    {
        await using var connection = await Target.OpenAsync(cancellationToken).ConfigureAwait(false);
        var context = await CreateContextAsync(connection, cancellationToken).ConfigureAwait(false);
        var row = await _ledger.GetAsync(connection, migrationId, cancellationToken).ConfigureAwait(false);
        var operation = OperationRegistry.FromLedger(row);
        RequirePhase(row, operation, PhaseAction.Backfill);
        var (table, design, key) = await DesignBackfillAsync(context, row, operation, cancellationToken).ConfigureAwait(false);
        return BackfillPlan(row, operation, table, design, key);
    }

    /// <summary>
    /// Runs (or resumes) the backfill. Stops at the end of the table, at options.MaxBatches, or on
    /// cancellation; each committed batch is kept, so running it again continues where it stopped.
    /// </summary>
    public async Task<Migration> RunBackfillAsync(PhasePlan plan, BackfillOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new BackfillOptions();
        options.Validate();
        var migrationId = plan.MigrationId ?? throw new ArgumentException("The plan has no migration id.", nameof(plan));
        var ct = cancellationToken;
        await using var coordinator = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(coordinator, ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(coordinator, migrationId, ct).ConfigureAwait(false);
        var operation = OperationRegistry.FromLedger(row);
        await using var phaseLock = (await _ledger.AcquirePhaseLockAsync(coordinator, row.TableOid, plan.Target, ct).ConfigureAwait(false)).Guarding(migrationId);
        row = await _ledger.GetAsync(coordinator, migrationId, ct).ConfigureAwait(false);
        RequirePhase(row, operation, PhaseAction.Backfill);
        var (table, design, key) = await DesignBackfillAsync(context, row, operation, ct).ConfigureAwait(false);
        RequireSamePlan(plan, BackfillPlan(row, operation, table, design, key).Steps);

        BackfillCheckpoint? checkpoint = null;
        var alreadyDone = 0L;
        if (row.Phase == MigrationPhase.Backfilling && row.BackfillCheckpointJson is { } json)
        {
            checkpoint = MigrationLedger.FromJson<BackfillCheckpoint>(json);
            alreadyDone = row.RowsBackfilled;
            Observer.Verbose(checkpoint.BatchSize is { } size
                ? $"Resuming the backfill of migration {migrationId} after {row.RowsBackfilled:N0} rows, at the {size:N0} rows per batch it had reached."
                : $"Resuming the backfill of migration {migrationId} after {row.RowsBackfilled:N0} rows.");
        }
        else
        {
            await _ledger.SetPhaseAsync(coordinator, null, migrationId, row.Phase, MigrationPhase.Backfilling, "backfill started", plan.Steps[0].Sql, null, ct).ConfigureAwait(false);
            // A new walk (first run, or a repeat after parity found drift); the row and time
            // counters keep adding up over all runs.
            await _ledger.UpdateAsync(coordinator, null, migrationId, "backfill_checkpoint = NULL, rows_estimated = $2", ct, new Npgsql.NpgsqlParameter { Value = table.EstimatedRows }).ConfigureAwait(false);
        }

        BackfillOutcome outcome;
        try
        {
            outcome = await _backfiller.RunAsync(migrationId, table, key, design, checkpoint, options, Math.Max(table.EstimatedRows, 1), alreadyDone, ct).ConfigureAwait(false);
        }
        catch (Npgsql.PostgresException e) when (Execution.PrivilegeErrors.IsPrivilegeError(e))
        {
            throw await Execution.PrivilegeErrors.ForRowsAsync(coordinator, e, $"The backfill of migration {migrationId}", table.QualifiedName, "SELECT, UPDATE").ConfigureAwait(false);
        }

        // The coordinator only holds the phase lock; the ledger is written on a connection of its
        // own, in a transaction that checks the lock is still held.
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        if (outcome.Finished)
        {
            await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            await phaseLock.RequireHeldAsync(connection, tx, migrationId, ct).ConfigureAwait(false);
            await _ledger.SetPhaseAsync(
                connection,
                tx,
                migrationId,
                MigrationPhase.Backfilling,
                MigrationPhase.Backfilled,
                "backfill finished",
                null,
                $"{outcome.RowsUpdated:N0} rows updated, {outcome.RowsScanned:N0} scanned in {outcome.Batches} batches this run ({outcome.Elapsed.TotalSeconds:0.0} s, {outcome.Paused.TotalSeconds:0.0} s of it paused)",
                ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
        }
        else
        {
            Observer.Verbose($"Backfill of migration {migrationId} stopped after {outcome.Batches} batches ({outcome.Elapsed.TotalSeconds:0.0} s, {outcome.Paused.TotalSeconds:0.0} s of it paused); run Invoke-Backfill again to continue.");
        }

        row = await _ledger.GetAsync(connection, migrationId, ct).ConfigureAwait(false);
        return await ToMigrationAsync(connection, row, includeEvents: false, ct).ConfigureAwait(false);
    }

    private static async Task<(TableInfo Table, BackfillDesign Design, BatchKey Key)> DesignBackfillAsync(PlanningContext context, LedgerRow row, MigrationOperation operation, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(row.TableOid, ct).ConfigureAwait(false)
            ?? throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, $"The table of migration {row.Id} ({Sql.Ident.Qualify(row.Schema, row.Table)}) no longer exists.");
        var design = operation.PlanBackfill(table, row)
            ?? throw new ZdtException(ErrorIds.NoBackfillNeeded, ErrorKind.InvalidOperation, $"Migration {row.Id} ({row.Operation}) has nothing to backfill.") { TargetObject = row.Id };
        var key = BatchKey.RequireWalkable(table, context.ServerVersion, $"Migration {row.Id} needs a backfill");

        return (table, design, key);
    }

    private static PhasePlan BackfillPlan(LedgerRow row, MigrationOperation operation, TableInfo table, BackfillDesign design, BatchKey key)
    {
        var step = new DdlStep(
            $"Backfill {table.QualifiedName} in batches by {key}: {design.Description} (the first statement runs once per batch; the second redoes a batch that met rows the application holds locked, skipping them)",
            Backfiller.DescribeBatch(table, key, design),
            Planning.LockLevel.RowExclusive,
            table.QualifiedName,
            "each batch is its own short transaction that commits with its checkpoint; rows the application has locked are skipped (SKIP LOCKED) and retried later");
        return new PhasePlan(operation.Kind, PhaseAction.Backfill, row.Id, table.QualifiedName, $"Backfill {design.Description} for the ~{table.EstimatedRows:N0} rows of {table.QualifiedName}", new[] { step }, operation);
    }
}
