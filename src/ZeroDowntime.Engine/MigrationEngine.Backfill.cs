using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine;

/// <summary>
/// The backfill phase: plan (what -WhatIf shows: one batch's SQL, then the VACUUM (ANALYZE) that
/// ends it) and run.
/// </summary>
public sealed partial class MigrationEngine
{
    /// <summary>Plans the backfill with its closing VACUUM (ANALYZE) of each table it walks.</summary>
    public Task<PhasePlan> PlanBackfillAsync(long migrationId, CancellationToken cancellationToken = default)
        => PlanBackfillAsync(migrationId, vacuumAfter: true, cancellationToken);

    /// <summary>
    /// Plans the backfill; with <paramref name="vacuumAfter"/> false, without the closing VACUUM
    /// (ANALYZE) (Invoke-Backfill -SkipVacuum): autovacuum then cleans up when it decides to,
    /// possibly while the contract waits for its lock. The run follows what the plan says.
    /// </summary>
    public async Task<PhasePlan> PlanBackfillAsync(long migrationId, bool vacuumAfter, CancellationToken cancellationToken = default)
    {
        await using var connection = await Target.OpenAsync(cancellationToken).ConfigureAwait(false);
        var context = await CreateContextAsync(connection, cancellationToken).ConfigureAwait(false);
        var row = await _ledger.GetAsync(connection, migrationId, cancellationToken).ConfigureAwait(false);
        var operation = OperationRegistry.FromLedger(row);
        RequirePhase(row, operation, PhaseAction.Backfill);
        var parts = await DesignBackfillAsync(context, row, operation, cancellationToken).ConfigureAwait(false);
        var vacuum = vacuumAfter ? await VacuumAfterBackfill.Settings.ReadAsync(connection, cancellationToken).ConfigureAwait(false) : null;
        return BackfillPlan(row, operation, parts, vacuum);
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
        var parts = await DesignBackfillAsync(context, row, operation, ct).ConfigureAwait(false);
        var vacuum = plan.Spec is BackfillPlanSpec { VacuumAfter: true } ? await VacuumAfterBackfill.Settings.ReadAsync(coordinator, ct).ConfigureAwait(false) : null;
        var planned = BackfillPlan(row, operation, parts, vacuum);
        RequireSamePlan(plan, planned.Steps);

        // Several tables (a type change with -Cascade; the leaf partitions of a partitioned table)
        // are walked one after the other, each with its own checkpoint; the checkpoint names its
        // table and the tables already finished, so a resumed run starts at that table, inside it,
        // and then walks every table not yet done (a partition created or attached meanwhile too).
        BackfillCheckpoint? checkpoint = null;
        var alreadyDone = 0L;
        var order = parts;
        var done = new List<uint>();
        if (row.Phase == MigrationPhase.Backfilling && row.BackfillCheckpointJson is { } json)
        {
            checkpoint = MigrationLedger.FromJson<BackfillCheckpoint>(json);
            var on = checkpoint.TableOid ?? row.TableOid;
            var first = parts.FindIndex(p => p.Table.Oid == on);
            if (first < 0)
            {
                throw new ZdtException(ErrorIds.TableChangedElsewhere, ErrorKind.InvalidOperation, $"The backfill of migration {migrationId} was walking the table of oid {on}, which the migration no longer names{(parts.Count > 1 ? " (a partition detached while the backfill was stopped?)" : "")}. Nothing was changed.") { TargetObject = migrationId };
            }

            // Checkpoints of earlier versions do not list what is done: the tables before theirs are.
            done.AddRange(checkpoint.Done ?? parts.Take(first).Select(p => p.Table.Oid));
            order = parts.Skip(first).Take(1).Concat(parts.Where((p, i) => i != first && !done.Contains(p.Table.Oid))).ToList();
            alreadyDone = row.RowsBackfilled;
            Observer.Verbose(checkpoint.BatchSize is { } size
                ? $"Resuming the backfill of migration {migrationId} on {parts[first].Table.QualifiedName} after {row.RowsBackfilled:N0} rows, at the {size:N0} rows per batch it had reached."
                : $"Resuming the backfill of migration {migrationId} on {parts[first].Table.QualifiedName} after {row.RowsBackfilled:N0} rows.");
        }
        else
        {
            await _ledger.SetPhaseAsync(coordinator, null, migrationId, row.Phase, MigrationPhase.Backfilling, "backfill started", plan.Steps.FirstOrDefault()?.Sql, null, ct).ConfigureAwait(false);
            // A new walk (first run, or a repeat after parity found drift); the row and time
            // counters keep adding up over all runs.
            await _ledger.RestartBackfillAsync(coordinator, migrationId, parts.Sum(p => p.Table.EstimatedRows), ct).ConfigureAwait(false);
        }

        var outcomes = new List<BackfillOutcome>();
        var batches = 0;
        var estimated = Math.Max(parts.Sum(p => p.Table.EstimatedRows), 1);
        var run = System.Diagnostics.Stopwatch.StartNew();
        string? stopMessage = null;

        // One throttle for the whole run: its duty cycle carries from one table (partition) to the
        // next, and a table of many small partitions is throttled by its total size.
        await using var pacer = Backfill.Throttle.BackfillPacer.For(options, Target, Observer, $"Backfill of migration {migrationId}", estimated - alreadyDone);
        int? adaptedBatchSize = null;
        foreach (var (table, design, key) in order)
        {
            // The limits of the run (-MaxBatches, -MaxDuration) are shared by its tables, and so is
            // the batch size the last one adapted to: each of 24 partitions growing again from
            // 1,000 rows cost a partitioned backfill a few batches per partition.
            var remaining = options with
            {
                MaxBatches = options.MaxBatches - batches,
                MaxDuration = options.MaxDuration - run.Elapsed,
                InitialBatchSize = adaptedBatchSize ?? options.InitialBatchSize,
            };
            if (remaining.MaxBatches is <= 0 || remaining.MaxDuration is { } left && left <= TimeSpan.Zero)
            {
                stopMessage = $"{(remaining.MaxBatches is <= 0 ? "-MaxBatches" : "-MaxDuration")} reached before {table.QualifiedName}; {Backfill.Control.BackfillResume.Advice(migrationId)}";
                break;
            }

            BackfillOutcome outcome;
            var isFirst = outcomes.Count == 0;
            try
            {
                outcome = await _backfiller.RunAsync(migrationId, table, key, design, isFirst ? checkpoint : null, done.ToList(), pacer, startPacer: isFirst, remaining, estimated, alreadyDone, ct).ConfigureAwait(false);
            }
            catch (Npgsql.PostgresException e) when (Execution.PrivilegeErrors.IsPrivilegeError(e))
            {
                throw await Execution.PrivilegeErrors.ForRowsAsync(coordinator, e, $"The backfill of migration {migrationId}", table.QualifiedName, "SELECT, UPDATE").ConfigureAwait(false);
            }

            outcomes.Add(outcome);
            batches += outcome.Batches;
            alreadyDone += outcome.RowsScanned;
            if (!outcome.Finished)
            {
                break;
            }

            done.Add(table.Oid);
            adaptedBatchSize = outcome.BatchSize ?? adaptedBatchSize;
        }

        var finished = outcomes.Count == order.Count && outcomes.All(o => o.Finished);

        // The coordinator only holds the phase lock; the ledger is written on a connection of its
        // own, in a transaction that checks the lock is still held.
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        if (finished)
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
                $"{outcomes.Sum(o => o.RowsUpdated):N0} rows updated, {outcomes.Sum(o => o.RowsScanned):N0} scanned in {batches} batches this run ({outcomes.Sum(o => o.Elapsed.TotalSeconds):0.0} s, {outcomes.Sum(o => o.Paused.TotalSeconds):0.0} s of it paused){(parts.Count > 1 ? $" over {parts.Count} {(parts.Any(p => p.Table.IsPartition) ? "tables or partitions" : "tables")}" : "")}",
                ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);

            // Backfilled is committed first: the vacuum only spares the contract a wait, so its
            // failure or interruption leaves a finished backfill and a warning.
            await VacuumAsync(migrationId, planned.Steps.Skip(parts.Count).ToList(), options, run, phaseLock, ct).ConfigureAwait(false);
        }
        else
        {
            // The last line of a run that did not finish: where it stopped and what to do next.
            var stopped = outcomes.LastOrDefault(o => !o.Finished)?.StopMessage ?? stopMessage
                ?? Backfill.Control.BackfillResume.Advice(migrationId);
            Observer.Warning($"Backfill of migration {migrationId} stopped at a batch boundary after {batches} batches ({outcomes.Sum(o => o.RowsScanned):N0} rows this run, {row.RowsBackfilled + outcomes.Sum(o => o.RowsUpdated):N0} updated in all; {outcomes.Sum(o => o.Elapsed.TotalSeconds):0.0} s, {outcomes.Sum(o => o.Paused.TotalSeconds):0.0} s of it paused): {stopped}.");
        }

        row = await _ledger.GetAsync(connection, migrationId, ct).ConfigureAwait(false);
        return await ToMigrationAsync(connection, row, includeEvents: false, ct).ConfigureAwait(false);
    }

    private sealed record BackfillPart(TableInfo Table, BackfillDesign Design, BatchKey Key);

    /// <summary>A backfill plan's own facts: its operation, and whether it ends with VACUUM (ANALYZE).</summary>
    private sealed record BackfillPlanSpec(MigrationOperation Operation, bool VacuumAfter);

    /// <summary>
    /// Runs the planned VACUUM (ANALYZE) steps through the lock-safe executor, each recorded as a
    /// ledger event. Not run when the run's time box is already over (a maintenance window ends
    /// with the backfill); a stop request (SIGTERM) interrupts it. Either way, and when it cannot
    /// get its lock, a warning says what was left to autovacuum.
    /// </summary>
    private async Task VacuumAsync(long migrationId, IReadOnlyList<DdlStep> steps, BackfillOptions options, System.Diagnostics.Stopwatch run, Ledger.PhaseLock phaseLock, CancellationToken ct)
    {
        foreach (var step in steps)
        {
            string? skipped = null;
            if (options.StopAfterBatch.IsCancellationRequested)
            {
                skipped = "a stop was requested";
            }
            else if (options.StopAt is { } at && DateTimeOffset.Now >= at)
            {
                skipped = "-StopAt has passed";
            }
            else if (options.MaxDuration is { } duration && run.Elapsed >= duration)
            {
                skipped = "-MaxDuration is over";
            }

            if (skipped is null)
            {
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, options.StopAfterBatch);
                try
                {
                    await _executor.RunAsync(
                        step,
                        (c, tx, token) => RecordVacuumAsync(c, tx!, migrationId, step, phaseLock, token),
                        stop.Token).ConfigureAwait(false);
                    continue;
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    skipped = "a stop was requested while it ran (interrupting it is harmless)";
                }
                catch (ZdtException e) when (e.ErrorId == ErrorIds.LockRetryTimeoutExceeded)
                {
                    skipped = e.Message;
                }
            }

            Observer.Warning($"The backfill of migration {migrationId} is finished, but '{step.Title}' did not run: {skipped}. Autovacuum will clean the table up when it decides to, and Complete-Contract may then wait for it; run {step.Statements[^1]} before the contract to avoid that.");
        }
    }

    private async Task RecordVacuumAsync(Npgsql.NpgsqlConnection connection, Npgsql.NpgsqlTransaction tx, long migrationId, DdlStep step, Ledger.PhaseLock phaseLock, CancellationToken ct)
    {
        await phaseLock.RequireHeldAsync(connection, tx, migrationId, ct).ConfigureAwait(false);
        await _ledger.AddEventAsync(connection, tx, migrationId, "vacuum after backfill", MigrationPhase.Backfilled, MigrationPhase.Backfilled, step.Sql, step.Title, ct).ConfigureAwait(false);
    }

    private static async Task<List<BackfillPart>> DesignBackfillAsync(PlanningContext context, LedgerRow row, MigrationOperation operation, CancellationToken ct)
    {
        var parts = new List<BackfillPart>();
        foreach (var oid in operation.BackfillTables(row))
        {
            var table = await context.Catalog.ReadTableAsync(oid, ct).ConfigureAwait(false)
                ?? throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, oid == row.TableOid ? $"The table of migration {row.Id} ({Sql.Ident.Qualify(row.Schema, row.Table)}) no longer exists." : $"A table migration {row.Id} changes (oid {oid}) no longer exists.");

            // A partitioned table has no rows of its own: each leaf partition is walked by its own key.
            foreach (var walked in await Operations.Partitions.PartitionLeaves.ReadAsync(context, table, $"Migration {row.Id} needs a backfill", ct).ConfigureAwait(false))
            {
                var design = operation.PlanBackfill(walked, row)
                    ?? throw new ZdtException(ErrorIds.NoBackfillNeeded, ErrorKind.InvalidOperation, $"Migration {row.Id} ({row.Operation}) has nothing to backfill.") { TargetObject = row.Id };
                var key = BatchKey.RequireWalkable(walked, context.ServerVersion, $"Migration {row.Id} needs a backfill");
                parts.Add(new BackfillPart(walked, design, key));
            }
        }

        return parts;
    }

    private PhasePlan BackfillPlan(LedgerRow row, MigrationOperation operation, IReadOnlyList<BackfillPart> parts, VacuumAfterBackfill.Settings? vacuum)
    {
        var steps = parts.Select(p => new DdlStep(
            $"Backfill {p.Table.QualifiedName} in batches by {p.Key}: {p.Design.Description} (the first statement runs once per batch; the second redoes a batch that met rows the application holds locked, skipping them)",
            Backfiller.DescribeBatch(p.Table, p.Key, p.Design),
            Planning.LockLevel.RowExclusive,
            p.Table.QualifiedName,
            "each batch is its own short transaction that commits with its checkpoint; rows the application has locked are skipped (SKIP LOCKED) and retried later")).ToList();
        if (vacuum is not null)
        {
            steps.AddRange(parts.Select(p => VacuumAfterBackfill.Plan(p.Table, vacuum, Options.LockTimeout)));
        }

        // A partitioned table without partitions has no row to fill: the walk is over at once.
        var what = parts.Count == 0 ? "nothing: the partitioned table has no partition" : string.Join("; then ", parts.Select(p => $"{p.Design.Description} for the ~{p.Table.EstimatedRows:N0} rows of {p.Table.QualifiedName}"));
        return new PhasePlan(operation.Kind, PhaseAction.Backfill, row.Id, Sql.Ident.Qualify(row.Schema, row.Table), $"Backfill {what}{(vacuum is null ? "" : ", then VACUUM (ANALYZE)")}", steps, new BackfillPlanSpec(operation, vacuum is not null));
    }
}
