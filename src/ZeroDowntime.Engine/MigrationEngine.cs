using Npgsql;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Execution;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Observing;
using ZeroDowntime.Engine.Operations;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine;

/// <summary>
/// The one entry point the cmdlets, the bench and the tests use. Every phase is planned first
/// (Plan*Async, read-only: what -WhatIf shows) and then run (RunAsync) under the ledger's
/// per-table advisory lock and the lock-safe executor. RunAsync plans again against the live
/// catalog and refuses if the SQL differs from what was shown.
/// </summary>
public sealed partial class MigrationEngine
{
    private readonly MigrationLedger _ledger;
    private readonly LockSafeExecutor _executor;
    private readonly Backfiller _backfiller;

    public MigrationEngine(ConnectionTarget target, EngineOptions? options = null, IMigrationObserver? observer = null)
    {
        Target = target;
        Options = options ?? new EngineOptions();
        Options.Validate();
        Observer = observer ?? NullObserver.Instance;
        _ledger = new MigrationLedger(Options.LedgerSchema, target);
        _executor = new LockSafeExecutor(target, Options, Observer);
        _backfiller = new Backfiller(target, _ledger, Options, Observer);
    }

    public ConnectionTarget Target { get; }

    public EngineOptions Options { get; }

    public IMigrationObserver Observer { get; }

    public Task<PhasePlan> PlanTableRenameAsync(TableRenameRequest request, CancellationToken cancellationToken = default)
        => PlanExpandAsync(new TableRename(new TableRename.Spec(request.Schema, request.Table, request.NewName)), request.Tag, cancellationToken);

    public Task<PhasePlan> PlanContractAsync(long migrationId, CancellationToken cancellationToken = default)
        => PlanLaterPhaseAsync(migrationId, PhaseAction.Contract, cancellationToken);

    public Task<PhasePlan> PlanUndoAsync(long migrationId, CancellationToken cancellationToken = default)
        => PlanLaterPhaseAsync(migrationId, PhaseAction.Undo, cancellationToken);

    /// <summary>Runs a plan made by one of the Plan*Async methods and returns the migration as the ledger now has it.</summary>
    public Task<Migration> RunAsync(PhasePlan plan, CancellationToken cancellationToken = default) => plan.Action switch
    {
        _ when plan.AlreadyDone => ReturnAlreadyDoneAsync(plan, cancellationToken),
        _ when IsVersionPlan(plan) => RunVersionPlanAsync(plan, cancellationToken),
        PhaseAction.Expand => RunExpandAsync(plan, cancellationToken),
        PhaseAction.Contract or PhaseAction.Undo => RunLaterPhaseAsync(plan, cancellationToken),
        PhaseAction.Backfill => RunBackfillAsync(plan, null, cancellationToken),
        PhaseAction.Apply => RunApplyAsync(plan, cancellationToken),
        _ => throw new ArgumentOutOfRangeException(nameof(plan), plan.Action, "This phase is run by its own engine method."),
    };

    public async Task<IReadOnlyList<Migration>> GetMigrationsAsync(MigrationQuery query, CancellationToken cancellationToken = default)
    {
        await using var connection = await Target.OpenAsync(cancellationToken).ConfigureAwait(false);
        var rows = await _ledger.QueryAsync(connection, query, cancellationToken).ConfigureAwait(false);
        var migrations = new List<Migration>(rows.Count);
        foreach (var row in rows)
        {
            migrations.Add(await ToMigrationAsync(connection, row, query.IncludeEvents, cancellationToken).ConfigureAwait(false));
        }

        return migrations;
    }

    /// <summary>One migration by id (with its events), or a MigrationNotFound error.</summary>
    public async Task<Migration> GetMigrationAsync(long migrationId, CancellationToken cancellationToken = default)
    {
        await using var connection = await Target.OpenAsync(cancellationToken).ConfigureAwait(false);
        var row = await _ledger.GetAsync(connection, migrationId, cancellationToken).ConfigureAwait(false);
        return await ToMigrationAsync(connection, row, includeEvents: true, cancellationToken).ConfigureAwait(false);
    }

    private async Task<PhasePlan> PlanExpandAsync(MigrationOperation operation, string? tag, CancellationToken ct)
    {
        RequireValidTag(tag);
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(connection, ct).ConfigureAwait(false);
        if (await FindSameRequestAsync(context, operation, tag, ct).ConfigureAwait(false) is { } started)
        {
            return AlreadyDonePlan(started, PhaseAction.Expand, $"Migration {started.Id} was started by this same request{TagText(tag)} and is in phase {started.Phase}: nothing to run. {MigrationLedger.NextStep(started)}");
        }

        var design = await operation.PlanExpandAsync(context, ct).ConfigureAwait(false);
        TableResolver.RefuseLedger(context, design.Table);
        return new PhasePlan(operation.Kind, PhaseAction.Expand, null, design.Table.QualifiedName, design.Summary, design.Steps, operation) { Tag = tag };
    }

    /// <summary>
    /// The active migration this same request started (same operation, same arguments as its stored
    /// spec says, same tag) and whose expand finished, or null. A different request on the same table is not found here and
    /// is refused by planning as before (MigrationAlreadyActive).
    /// </summary>
    private async Task<LedgerRow?> FindSameRequestAsync(PlanningContext context, MigrationOperation operation, string? tag, CancellationToken ct)
    {
        if (operation.RequestIdentity is not { } identity)
        {
            return null;
        }

        var active = await _ledger.QueryAsync(context.Connection, new MigrationQuery { ActiveOnly = true, Operations = [operation.Kind] }, ct).ConfigureAwait(false);
        // An expand that did not finish (Expanding: killed, disconnected) is not a result to go on
        // from: it is still refused as MigrationAlreadyActive, whose advice is Undo-Migration.
        return active.FirstOrDefault(row => row.Phase != MigrationPhase.Expanding && row.Tag == tag && OperationRegistry.FromLedger(row).RequestIdentity == identity);
    }

    private static string TagText(string? tag) => tag is null ? "" : $" (tag '{tag}')";

    /// <summary>A plan with nothing to run, because what the phase would do is done (<see cref="PhasePlan.AlreadyDone"/>).</summary>
    private static PhasePlan AlreadyDonePlan(LedgerRow? row, PhaseAction action, string summary, string? target = null)
        => new(row?.Operation ?? "", action, row?.Id, target ?? (row is null ? "" : Sql.Ident.Qualify(row.Schema, row.Table)), summary, Array.Empty<DdlStep>(), summary) { AlreadyDone = true, Tag = row?.Tag };

    /// <summary>Runs a plan that has nothing to run: says why, and returns the migration it names.</summary>
    private async Task<Migration> ReturnAlreadyDoneAsync(PhasePlan plan, CancellationToken ct)
    {
        Observer.Information(plan.Summary);
        var id = plan.MigrationId ?? throw new InvalidOperationException($"Nothing to run and no migration to return: {plan.Summary}");
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(connection, id, ct).ConfigureAwait(false);
        return await ToMigrationAsync(connection, row, includeEvents: false, ct).ConfigureAwait(false);
    }

    /// <summary>A label is a short name a later stage can type: refused before anything is planned when it is blank or too long.</summary>
    private static void RequireValidTag(string? tag)
    {
        if (tag is not null && (string.IsNullOrWhiteSpace(tag) || tag.Length > MigrationRequest.MaxTagLength))
        {
            throw new ZdtException(
                ErrorIds.InvalidTag,
                ErrorKind.InvalidArgument,
                $"A migration's tag must be 1 to {MigrationRequest.MaxTagLength} characters and not blank (got {tag.Length} characters). Nothing was changed.")
            { TargetObject = tag };
        }
    }

    private async Task<PhasePlan> PlanLaterPhaseAsync(long migrationId, PhaseAction action, CancellationToken ct)
    {
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(connection, ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(connection, migrationId, ct).ConfigureAwait(false);
        // Run again after it finished (a pipeline stage retried): done already, not out of order.
        if ((action, row.Phase) is (PhaseAction.Contract, MigrationPhase.Completed) or (PhaseAction.Undo, MigrationPhase.Undone))
        {
            var verb = action == PhaseAction.Contract ? "completed" : "undone";
            return AlreadyDonePlan(row, action, $"Migration {row.Id} ({row.Operation} of {Sql.Ident.Qualify(row.Schema, row.Table)}) was already {verb} at {row.UpdatedAt:u}: nothing to run.");
        }

        var operation = OperationRegistry.FromLedger(row);
        RequirePhase(row, operation, action);
        var design = await DesignAsync(operation, context, row, action, ct).ConfigureAwait(false);
        return new PhasePlan(operation.Kind, action, row.Id, design.Target, design.Summary, design.Steps, operation);
    }

    private async Task<Migration> RunExpandAsync(PhasePlan plan, CancellationToken ct)
    {
        var operation = (MigrationOperation)plan.Spec;
        await using var coordinator = await Target.OpenAsync(ct).ConfigureAwait(false);
        await _ledger.EnsureCreatedAsync(coordinator, ct).ConfigureAwait(false);
        var context = await CreateContextAsync(coordinator, ct).ConfigureAwait(false);

        // Plan again: the schema may have changed since -WhatIf/-Confirm showed the plan.
        var design = await operation.PlanExpandAsync(context, ct).ConfigureAwait(false);
        TableResolver.RefuseLedger(context, design.Table);
        RequireSamePlan(plan, design.Steps);
        await using var phaseLock = await _ledger.AcquirePhaseLockAsync(coordinator, design.Table.Oid, design.Table.QualifiedName, ct).ConfigureAwait(false);
        var before = await TableFingerprint.ReadAsync(coordinator, design.Table.Oid, _ledger.SchemaName, ct).ConfigureAwait(false);
        var registration = new MigrationRegistration(
            operation.Kind, design.Table.Schema, design.Table.Name, design.Table.Oid, design.Column, design.NewName, design.Strategy, design.SpecJson, design.RowsEstimated, design.Summary)
        {
            HeldTableOids = design.HeldTableOids,
            Tag = plan.Tag,
        };
        var id = await _ledger.RegisterAsync(coordinator, registration, ct).ConfigureAwait(false);
        phaseLock.Guarding(id);
        Observer.Verbose($"Migration {id} registered in the ledger: {design.Summary}.");

        var progress = new StepProgress();
        try
        {
            await RunStepsAsync(id, "expand", design.Steps, MigrationPhase.Expanding, MigrationPhase.Expanded, design.Summary, phaseLock, progress, ct).ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            var outcome = await RecoverFailedExpandAsync(id, design.Table.Oid, before, design.Steps, progress, failure, phaseLock).ConfigureAwait(false);
            if (outcome is not null)
            {
                throw outcome;
            }

            throw;
        }

        var row = await _ledger.GetAsync(coordinator, id, ct).ConfigureAwait(false);
        return await ToMigrationAsync(coordinator, row, includeEvents: false, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// After an expand fails, put the table back as it was: compare the table's fingerprint with the
    /// one taken before the expand and, when it differs (a committed step, a non-transactional step
    /// that left something, a commit whose outcome was lost with its connection), run the
    /// operation's undo plan, derived from the live catalog, and compare again. Only when the table
    /// is proven as before is the migration marked Failed (inactive: the table is free); otherwise
    /// it stays Expanding, from which Undo-Migration runs, and the ledger says so. Works on a fresh
    /// connection: the coordinator may be what broke. Returns the error to throw instead of the
    /// original one, or null to rethrow it.
    /// </summary>
    private async Task<Exception?> RecoverFailedExpandAsync(long id, uint tableOid, IReadOnlyList<string> before, IReadOnlyList<DdlStep> steps, StepProgress progress, Exception failure, PhaseLock phaseLock)
    {
        var where = progress.Running < steps.Count ? $"step {progress.Running + 1}/{steps.Count} ('{steps[progress.Running].Title}')" : "its last step";
        var message = $"Expand failed at {where}: {Target.Scrub(failure.Message)}";
        string? left = null;
        try
        {
            await using var connection = await Target.OpenAsync(CancellationToken.None).ConfigureAwait(false);
            var after = await TableFingerprint.ReadAsync(connection, tableOid, _ledger.SchemaName, CancellationToken.None).ConfigureAwait(false);
            if (TableFingerprint.Difference(before, after).Length > 0)
            {
                Observer.Warning($"Expand of migration {id} failed at {where} after {progress.Committed} committed step(s); undoing what it did.");
                var context = await CreateContextAsync(connection, CancellationToken.None).ConfigureAwait(false);
                // The operation as the ledger has it: its spec there holds what planning found (oid, names, old default).
                var row = await _ledger.GetAsync(connection, id, CancellationToken.None).ConfigureAwait(false);
                var undo = await OperationRegistry.FromLedger(row).PlanUndoAsync(context, row, CancellationToken.None).ConfigureAwait(false);
                foreach (var step in undo.Steps)
                {
                    await _executor.RunAsync(step, (c, tx, token) => phaseLock.RequireHeldAsync(c, tx!, id, token), CancellationToken.None).ConfigureAwait(false);
                }

                after = await TableFingerprint.ReadAsync(connection, tableOid, _ledger.SchemaName, CancellationToken.None).ConfigureAwait(false);
            }

            left = TableFingerprint.Difference(before, after);
            if (left.Length == 0)
            {
                await RecordErrorAsync(id, MigrationPhase.Expanding, MigrationPhase.Failed, "expand", message + " | Nothing is left behind: the table is exactly as before the expand (phase Failed; the table is free for a new migration).").ConfigureAwait(false);
                return null;
            }
        }
        catch (Exception undoFailure)
        {
            left = "the automatic undo failed: " + Target.Scrub(undoFailure.Message);
        }

        var advice = $"Migration {id} stays Expanding: run Undo-Migration -Id {id} to finish removing it, then run the command again.";
        await RecordErrorAsync(id, MigrationPhase.Expanding, null, "expand", $"{message} | The table is not as before ({left}). {advice}").ConfigureAwait(false);
        Observer.Warning($"Migration {id}: {left}. {advice}");
        return new ZdtException(ErrorIds.ExpandFailedUndoNeeded, ErrorKind.InvalidOperation, $"{message} The table could not be put back automatically ({left}). {advice}", failure) { TargetObject = id };
    }

    /// <summary>
    /// Records a failure on a fresh connection (the phase's own may be the one that broke), so the
    /// original error is never hidden by a second one; a failure to record is only reported.
    /// </summary>
    private async Task RecordErrorAsync(long id, MigrationPhase phase, MigrationPhase? newPhase, string action, string message)
    {
        try
        {
            await using var connection = await Target.OpenAsync(CancellationToken.None).ConfigureAwait(false);
            await _ledger.RecordErrorAsync(connection, id, phase, newPhase, action, message, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or ZdtException or InvalidOperationException)
        {
            Observer.Warning($"Migration {id}: the failure could not be recorded in the ledger ({Target.Scrub(e.Message)}): {Target.Scrub(message)}");
        }
    }

    private async Task<Migration> RunLaterPhaseAsync(PhasePlan plan, CancellationToken ct)
    {
        var migrationId = plan.MigrationId ?? throw new ArgumentException("The plan has no migration id.", nameof(plan));
        await using var coordinator = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(coordinator, ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(coordinator, migrationId, ct).ConfigureAwait(false);
        var operation = OperationRegistry.FromLedger(row);
        await using var phaseLock = (await _ledger.AcquirePhaseLockAsync(coordinator, row.TableOid, plan.Target, ct).ConfigureAwait(false)).Guarding(migrationId);
        // Read again under the lock: another session may have moved the migration on meanwhile.
        row = await _ledger.GetAsync(coordinator, migrationId, ct).ConfigureAwait(false);
        RequirePhase(row, operation, plan.Action);
        if (plan.Action == PhaseAction.Contract)
        {
            await BeforeContractAsync(operation, context, coordinator, row, ct).ConfigureAwait(false);
        }

        var design = await DesignAsync(operation, context, row, plan.Action, ct).ConfigureAwait(false);
        RequireSamePlan(plan, design.Steps);

        var (inProgress, done, action) = plan.Action == PhaseAction.Contract
            ? (MigrationPhase.Contracting, MigrationPhase.Completed, "contract")
            : (MigrationPhase.Undoing, MigrationPhase.Undone, "undo");
        var current = row.Phase;
        if (design.Steps.Count > 1 && current != inProgress)
        {
            // Several transactions: mark the phase as under way so a crash in between is visible and resumable.
            await _ledger.SetPhaseAsync(coordinator, null, migrationId, current, inProgress, action + " started", null, design.Summary, ct).ConfigureAwait(false);
            current = inProgress;
        }

        try
        {
            await RunStepsAsync(migrationId, action, design.Steps, current, done, design.Summary, phaseLock, new StepProgress(), ct).ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            var advice = plan.Action == PhaseAction.Contract
                ? $"Run Complete-Contract -Id {migrationId} again to continue, or Undo-Migration -Id {migrationId}."
                : $"Run Undo-Migration -Id {migrationId} again to continue.";
            await RecordErrorAsync(migrationId, current, null, action, $"{Target.Scrub(failure.Message)} | {advice}").ConfigureAwait(false);
            throw;
        }

        await using var after = await Target.OpenAsync(ct).ConfigureAwait(false);
        if (plan.Action == PhaseAction.Undo)
        {
            await WarnAboutInvalidIndexesAsync(after, row, ct).ConfigureAwait(false);
        }

        row = await _ledger.GetAsync(after, migrationId, ct).ConfigureAwait(false);
        return await ToMigrationAsync(after, row, includeEvents: false, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The operation's checks before its contract. When parity fails there, a Verified migration is
    /// moved back to Backfilled (as Test-ColumnParity does when it finds drift), so the advice to run
    /// Invoke-Backfill again is runnable: Invoke-Backfill continues from Backfilled.
    /// </summary>
    private async Task BeforeContractAsync(MigrationOperation operation, PlanningContext context, NpgsqlConnection coordinator, LedgerRow row, CancellationToken ct)
    {
        try
        {
            await operation.BeforeContractAsync(context, row, this, ct).ConfigureAwait(false);
        }
        catch (ZdtException refused) when (refused.ErrorId == ErrorIds.ParityFailed && row.Phase == MigrationPhase.Verified)
        {
            await _ledger.SetPhaseAsync(coordinator, null, row.Id, MigrationPhase.Verified, MigrationPhase.Backfilled, "parity lost", null, Target.Scrub(refused.Message), CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Undo must leave the table's indexes usable. The operations' undo plans rebuild what they
    /// dropped or left INVALID; an INVALID index still there afterwards is not theirs to judge
    /// (it may predate the migration), so it is reported, never hidden.
    /// </summary>
    private async Task WarnAboutInvalidIndexesAsync(NpgsqlConnection connection, LedgerRow row, CancellationToken ct)
    {
        var table = await new CatalogReader(connection).ReadTableAsync(row.TableOid, ct).ConfigureAwait(false);
        var invalid = table?.Indexes.Where(i => !i.IsValid).Select(i => Sql.Ident.Quote(i.Name)).ToList() ?? new List<string>();
        if (invalid.Count > 0)
        {
            var message = $"{table!.QualifiedName} has INVALID index(es) after the undo: {string.Join(", ", invalid)}. They serve no query; rebuild them (REINDEX INDEX CONCURRENTLY) or drop them.";
            Observer.Warning(message);
            await _ledger.AddEventAsync(connection, null, row.Id, "undo check", MigrationPhase.Undone, MigrationPhase.Undone, null, message, ct).ConfigureAwait(false);
        }
    }

    /// <summary>How far a run of steps got: steps committed, and the index of the step running (or failed).</summary>
    private sealed class StepProgress
    {
        public int Committed { get; set; }

        public int Running { get; set; }
    }

    /// <summary>
    /// Runs the steps one by one. Each records its event in its own transaction; the last one also
    /// moves the phase, so the schema change and the ledger commit together. Every step's
    /// transaction first checks that the phase lock is still held, so a phase whose lock was lost
    /// stops before it commits anything more. A step that runs outside a transaction (CONCURRENTLY)
    /// is announced in the ledger first: if it is stopped, the ledger says what it was doing.
    /// </summary>
    private async Task RunStepsAsync(long id, string action, IReadOnlyList<DdlStep> steps, MigrationPhase from, MigrationPhase to, string summary, PhaseLock phaseLock, StepProgress progress, CancellationToken ct)
    {
        if (steps.Count == 0)
        {
            await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
            await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            await phaseLock.RequireHeldAsync(connection, tx, id, ct).ConfigureAwait(false);
            await _ledger.SetPhaseAsync(connection, tx, id, from, to, action, null, summary + " (nothing left to change)", ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return;
        }

        for (var i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            var isLast = i == steps.Count - 1;
            var label = $"{action} step {i + 1}/{steps.Count}: {step.Title}";
            progress.Running = i;
            Observer.Verbose($"Migration {id}: {label}\n{step.Sql}");
            if (!step.Transactional)
            {
                await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
                await _ledger.AddEventAsync(connection, null, id, label + " (started; it runs outside a transaction)", from, from, step.Sql, null, ct).ConfigureAwait(false);
            }

            await _executor.RunAsync(
                step,
                async (connection, tx, token) =>
                {
                    await phaseLock.RequireHeldAsync(connection, tx!, id, token).ConfigureAwait(false);
                    var sql = step.Sql;
                    if (isLast)
                    {
                        await _ledger.SetPhaseAsync(connection, tx, id, from, to, label, sql, summary, token).ConfigureAwait(false);
                    }
                    else
                    {
                        await _ledger.AddEventAsync(connection, tx, id, label, from, from, sql, null, token).ConfigureAwait(false);
                    }
                },
                ct).ConfigureAwait(false);
            progress.Committed = i + 1;
        }

        progress.Running = steps.Count;
    }

    private static Task<PhaseDesign> DesignAsync(MigrationOperation operation, PlanningContext context, LedgerRow row, PhaseAction action, CancellationToken ct)
        => action == PhaseAction.Contract ? operation.PlanContractAsync(context, row, ct) : operation.PlanUndoAsync(context, row, ct);

    internal static void RequirePhase(LedgerRow row, MigrationOperation operation, PhaseAction action)
    {
        var allowed = action switch
        {
            PhaseAction.Contract => row.Phase == operation.ContractFrom || row.Phase == MigrationPhase.Contracting,
            PhaseAction.Undo => operation.CanUndoFrom(row.Phase),
            PhaseAction.Backfill => operation.CanBackfillFrom(row.Phase),
            _ => false,
        };
        if (allowed)
        {
            return;
        }

        var needs = action switch
        {
            PhaseAction.Contract => $"Complete-Contract needs phase {operation.ContractFrom}",
            PhaseAction.Backfill => "Invoke-Backfill runs after the expand (phase Expanded), resumes phase Backfilling, and may be repeated in phase Backfilled",
            _ => "Undo-Migration works only before the migration is completed",
        };
        throw new ZdtException(
            ErrorIds.PhaseOutOfOrder,
            ErrorKind.InvalidOperation,
            $"Migration {row.Id} ({row.Operation} of {Sql.Ident.Qualify(row.Schema, row.Table)}) is in phase {row.Phase}; {needs}. Nothing was changed.")
        { TargetObject = row.Id };
    }

    internal static void RequireSamePlan(PhasePlan shown, IReadOnlyList<DdlStep> now)
    {
        var before = shown.Steps.SelectMany(s => s.Statements);
        var after = now.SelectMany(s => s.Statements);
        if (!before.SequenceEqual(after, StringComparer.Ordinal))
        {
            throw new ZdtException(
                ErrorIds.PlanChanged,
                ErrorKind.InvalidOperation,
                $"The schema of {shown.Target} changed between planning and running, so the planned SQL is no longer what would run. Nothing was changed; run the command again to see the new plan.")
            { TargetObject = shown.Target };
        }
    }

    internal async Task<PlanningContext> CreateContextAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var catalog = new CatalogReader(connection);
        var version = await catalog.ServerVersionAsync(ct).ConfigureAwait(false);
        return new PlanningContext(connection, catalog, _ledger, version, Options);
    }

    internal async Task<Migration> ToMigrationAsync(NpgsqlConnection connection, LedgerRow row, bool includeEvents, CancellationToken ct)
    {
        IReadOnlyDictionary<string, string> details;
        try
        {
            details = OperationRegistry.FromLedger(row).Describe(row);
        }
        catch (ZdtException)
        {
            details = new Dictionary<string, string>();
        }

        return new Migration
        {
            Id = row.Id,
            Operation = row.Operation,
            Schema = row.Schema,
            Table = row.Table,
            Column = row.Column,
            NewName = row.NewName,
            Tag = row.Tag,
            Strategy = row.Strategy,
            Phase = row.Phase,
            CreatedAt = row.CreatedAt,
            CreatedBy = row.CreatedBy,
            UpdatedAt = row.UpdatedAt,
            UpdatedBy = row.UpdatedBy,
            RowsEstimated = row.RowsEstimated,
            RowsBackfilled = row.RowsBackfilled,
            BackfillDuration = row.BackfillSeconds > 0 ? TimeSpan.FromSeconds(row.BackfillSeconds) : null,
            BackfillRowsPerSecond = row.BackfillSeconds > 0 ? row.RowsBackfilled / row.BackfillSeconds : null,
            Backfill = row.BackfillStatusJson is { } status ? MigrationLedger.FromJson<Backfill.Control.BackfillStatus>(status) : null,
            BackfillControl = row.BackfillControlJson is { } control ? MigrationLedger.FromJson<Backfill.Control.BackfillControl>(control) : null,
            BackfillPausedDuration = row.BackfillCheckpointJson is { } checkpoint ? TimeSpan.FromSeconds(MigrationLedger.FromJson<Backfill.BackfillCheckpoint>(checkpoint).PausedSeconds) : null,
            ParityCheckedAt = row.ParityCheckedAt,
            ParityMismatches = row.ParityMismatches,
            LastError = row.LastError,
            Details = details,
            Events = includeEvents ? await _ledger.EventsAsync(connection, row.Id, ct).ConfigureAwait(false) : Array.Empty<MigrationEvent>(),
            Connection = Target,
        };
    }
}
