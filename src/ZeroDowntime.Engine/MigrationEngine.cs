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
        => PlanExpandAsync(new TableRename(new TableRename.Spec(request.Schema, request.Table, request.NewName)), cancellationToken);

    public Task<PhasePlan> PlanContractAsync(long migrationId, CancellationToken cancellationToken = default)
        => PlanLaterPhaseAsync(migrationId, PhaseAction.Contract, cancellationToken);

    public Task<PhasePlan> PlanUndoAsync(long migrationId, CancellationToken cancellationToken = default)
        => PlanLaterPhaseAsync(migrationId, PhaseAction.Undo, cancellationToken);

    /// <summary>Runs a plan made by one of the Plan*Async methods and returns the migration as the ledger now has it.</summary>
    public Task<Migration> RunAsync(PhasePlan plan, CancellationToken cancellationToken = default) => plan.Action switch
    {
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

    private async Task<PhasePlan> PlanExpandAsync(MigrationOperation operation, CancellationToken ct)
    {
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(connection, ct).ConfigureAwait(false);
        var design = await operation.PlanExpandAsync(context, ct).ConfigureAwait(false);
        return new PhasePlan(operation.Kind, PhaseAction.Expand, null, design.Table.QualifiedName, design.Summary, design.Steps, operation);
    }

    private async Task<PhasePlan> PlanLaterPhaseAsync(long migrationId, PhaseAction action, CancellationToken ct)
    {
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(connection, ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(connection, migrationId, ct).ConfigureAwait(false);
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
        RequireSamePlan(plan, design.Steps);
        await using var phaseLock = await PhaseLock.AcquireAsync(coordinator, design.Table.Oid, design.Table.QualifiedName, ct).ConfigureAwait(false);
        var registration = new MigrationRegistration(
            operation.Kind, design.Table.Schema, design.Table.Name, design.Table.Oid, design.Column, design.NewName, design.Strategy, design.SpecJson, design.RowsEstimated, design.Summary);
        var id = await _ledger.RegisterAsync(coordinator, registration, ct).ConfigureAwait(false);
        Observer.Verbose($"Migration {id} registered in the ledger: {design.Summary}.");

        var committed = 0;
        try
        {
            committed = await RunStepsAsync(id, "expand", design.Steps, MigrationPhase.Expanding, MigrationPhase.Expanded, design.Summary, ct).ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            await RecoverFailedExpandAsync(coordinator, context, operation, id, committed, design.Steps, failure).ConfigureAwait(false);
            throw;
        }

        var row = await _ledger.GetAsync(coordinator, id, ct).ConfigureAwait(false);
        return await ToMigrationAsync(coordinator, row, includeEvents: false, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// After an expand fails, leave nothing behind: when no step committed the database is as it
    /// was; otherwise undo what did commit. The migration is then marked Failed (inactive, so the
    /// table is free again). If even the undo fails it stays Expanding for Undo-Migration.
    /// </summary>
    private async Task RecoverFailedExpandAsync(NpgsqlConnection coordinator, PlanningContext context, MigrationOperation operation, long id, int committed, IReadOnlyList<DdlStep> steps, Exception failure)
    {
        var message = Target.Scrub(failure.Message);
        var anyNonTransactional = steps.Take(committed + 1).Any(s => !s.Transactional);
        try
        {
            if (committed > 0 || anyNonTransactional)
            {
                Observer.Warning($"Expand of migration {id} failed after {committed} of {steps.Count} steps; undoing what was done.");
                var row = await _ledger.GetAsync(coordinator, id, CancellationToken.None).ConfigureAwait(false);
                var undo = await operation.PlanUndoAsync(context, row, CancellationToken.None).ConfigureAwait(false);
                foreach (var step in undo.Steps)
                {
                    await _executor.RunAsync(step, null, CancellationToken.None).ConfigureAwait(false);
                }
            }

            await _ledger.RecordErrorAsync(coordinator, id, MigrationPhase.Expanding, MigrationPhase.Failed, "expand", message, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception undoFailure)
        {
            await _ledger.RecordErrorAsync(coordinator, id, MigrationPhase.Expanding, null, "expand", message + " | automatic undo failed: " + Target.Scrub(undoFailure.Message), CancellationToken.None).ConfigureAwait(false);
            Observer.Warning($"Migration {id} could not be undone automatically ({Target.Scrub(undoFailure.Message)}); it stays active. Run Undo-Migration -Id {id}.");
        }
    }

    private async Task<Migration> RunLaterPhaseAsync(PhasePlan plan, CancellationToken ct)
    {
        var migrationId = plan.MigrationId ?? throw new ArgumentException("The plan has no migration id.", nameof(plan));
        await using var coordinator = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(coordinator, ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(coordinator, migrationId, ct).ConfigureAwait(false);
        var operation = OperationRegistry.FromLedger(row);
        await using var phaseLock = await PhaseLock.AcquireAsync(coordinator, row.TableOid, plan.Target, ct).ConfigureAwait(false);
        // Read again under the lock: another session may have moved the migration on meanwhile.
        row = await _ledger.GetAsync(coordinator, migrationId, ct).ConfigureAwait(false);
        RequirePhase(row, operation, plan.Action);
        if (plan.Action == PhaseAction.Contract)
        {
            await operation.BeforeContractAsync(context, row, this, ct).ConfigureAwait(false);
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
            await RunStepsAsync(migrationId, action, design.Steps, current, done, design.Summary, ct).ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            await _ledger.RecordErrorAsync(coordinator, migrationId, current, null, action, failure.Message, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        row = await _ledger.GetAsync(coordinator, migrationId, ct).ConfigureAwait(false);
        return await ToMigrationAsync(coordinator, row, includeEvents: false, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs the steps one by one. Each records its event in its own transaction; the last one also
    /// moves the phase, so the schema change and the ledger commit together. Returns how many committed.
    /// </summary>
    private async Task<int> RunStepsAsync(long id, string action, IReadOnlyList<DdlStep> steps, MigrationPhase from, MigrationPhase to, string summary, CancellationToken ct)
    {
        if (steps.Count == 0)
        {
            await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
            await _ledger.SetPhaseAsync(connection, null, id, from, to, action, null, summary + " (nothing left to change)", ct).ConfigureAwait(false);
            return 0;
        }

        for (var i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            var isLast = i == steps.Count - 1;
            var label = $"{action} step {i + 1}/{steps.Count}: {step.Title}";
            Observer.Verbose($"Migration {id}: {label}\n{step.Sql}");
            await _executor.RunAsync(
                step,
                async (connection, tx, token) =>
                {
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
        }

        return steps.Count;
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
            "PhaseOutOfOrder",
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
                "PlanChanged",
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
            ParityCheckedAt = row.ParityCheckedAt,
            ParityMismatches = row.ParityMismatches,
            LastError = row.LastError,
            Details = details,
            Events = includeEvents ? await _ledger.EventsAsync(connection, row.Id, ct).ConfigureAwait(false) : Array.Empty<MigrationEvent>(),
            Connection = Target,
        };
    }
}
