using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine;

/// <summary>
/// Column renames by view, grouped in version schemas. The ledger holds one migration per
/// (version schema, table) (so its one-active-migration-per-table index keeps its meaning); a
/// second rename of the same table in the same version extends that migration's view; a version
/// is the set of active RenameColumnView migrations whose spec names it, completed (or undone)
/// together in one transaction by PlanContractVersionAsync / PlanUndoVersionAsync + RunVersionAsync.
/// </summary>
public sealed partial class MigrationEngine
{
    /// <summary>
    /// Plans a column rename by view (what -WhatIf shows). Starts a new migration for the table in
    /// the version schema, or, when the table already has one there, plans extending its view.
    /// Called by PlanColumnRenameAsync for Strategy View.
    /// </summary>
    internal async Task<PhasePlan> PlanColumnRenameViewAsync(ColumnRenameRequest request, CancellationToken ct)
    {
        var version = request.VersionSchema ?? VersionSchema.DefaultName(request.Schema, request.Table);
        var rename = new ColumnRenameView.Rename(request.Column, request.NewName);
        await using (var connection = await Target.OpenAsync(ct).ConfigureAwait(false))
        {
            var context = await CreateContextAsync(connection, ct).ConfigureAwait(false);
            if (await FindMigrationToExtendAsync(context, request.Schema, request.Table, version, ct).ConfigureAwait(false) is { } row)
            {
                var operation = (ColumnRenameView)OperationRegistry.FromLedger(row);
                if (row.Tag == request.Tag && operation.HasRename(rename))
                {
                    return AlreadyDonePlan(row, PhaseAction.Expand, $"Migration {row.Id} already serves {Ident.Quote(request.Column)} as {Ident.Quote(request.NewName)} in {Ident.Quote(version)} (the same request{TagText(request.Tag)}), phase {row.Phase}: nothing to run. {MigrationLedger.NextStep(row)}");
                }

                var extension = await operation.PlanExtendAsync(context, row, rename, ct).ConfigureAwait(false);
                return new PhasePlan(ColumnRenameView.KindName, PhaseAction.Expand, row.Id, Ident.Qualify(row.Schema, row.Table), extension.Summary, extension.Steps, new ViewExtension(row.Id, rename));
            }
        }

        return await PlanExpandAsync(new ColumnRenameView(new ColumnRenameView.Spec(request.Schema, request.Table, version, new[] { rename })), request.Tag, ct).ConfigureAwait(false);
    }

    /// <summary>Plans completing every active migration of a version schema together, in one transaction.</summary>
    public Task<PhasePlan> PlanContractVersionAsync(string versionSchema, CancellationToken cancellationToken = default)
        => PlanVersionPhaseAsync(versionSchema, PhaseAction.Contract, cancellationToken);

    /// <summary>Plans undoing every active migration of a version schema together, in one transaction.</summary>
    public Task<PhasePlan> PlanUndoVersionAsync(string versionSchema, CancellationToken cancellationToken = default)
        => PlanVersionPhaseAsync(versionSchema, PhaseAction.Undo, cancellationToken);

    /// <summary>Runs a plan of PlanContractVersionAsync or PlanUndoVersionAsync; returns the migrations as the ledger now has them.</summary>
    public async Task<IReadOnlyList<Migration>> RunVersionAsync(PhasePlan plan, CancellationToken cancellationToken = default)
    {
        var version = plan.Spec as VersionPhase ?? throw new ArgumentException("This plan is not for a whole version schema; run it with RunAsync.", nameof(plan));
        var ct = cancellationToken;
        await using var coordinator = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(coordinator, ct).ConfigureAwait(false);
        var rows = await VersionMigrationsAsync(coordinator, version.VersionSchema, ct).ConfigureAwait(false);
        var locks = new Dictionary<uint, PhaseLock>();
        try
        {
            // In oid order, so two sessions working on overlapping sets cannot wait for each other.
            foreach (var row in rows.OrderBy(r => r.TableOid))
            {
                locks[row.TableOid] = await _ledger.AcquirePhaseLockAsync(coordinator, row.TableOid, Ident.Qualify(row.Schema, row.Table), ct).ConfigureAwait(false);
            }

            // Read again under the locks: another session may have moved a migration on meanwhile.
            rows = await VersionMigrationsAsync(coordinator, version.VersionSchema, ct).ConfigureAwait(false);
            if (!rows.Select(r => r.Id).SequenceEqual(version.MigrationIds))
            {
                throw new ZdtException(
                    ErrorIds.PlanChanged,
                    ErrorKind.InvalidOperation,
                    $"The migrations of version schema {Ident.Quote(version.VersionSchema)} changed between planning and running (planned: {string.Join(", ", version.MigrationIds)}; now: {string.Join(", ", rows.Select(r => r.Id))}). Nothing was changed; run the command again to see the new plan.")
                { TargetObject = version.VersionSchema };
            }

            foreach (var row in rows)
            {
                locks[row.TableOid].Guarding(row.Id);
            }

            var design = await DesignVersionAsync(context, version.VersionSchema, rows, plan.Action, ct).ConfigureAwait(false);
            RequireSamePlan(plan, design.Steps);
            var (done, action) = plan.Action == PhaseAction.Contract ? (MigrationPhase.Completed, "contract") : (MigrationPhase.Undone, "undo");
            try
            {
                await RunTogetherAsync(rows, action, design, done, ct).ConfigureAwait(false);
            }
            catch (Exception failure)
            {
                foreach (var row in rows)
                {
                    await RecordErrorAsync(row.Id, row.Phase, null, action + " of version " + version.VersionSchema, Target.Scrub(failure.Message)).ConfigureAwait(false);
                }

                throw;
            }

            var migrations = new List<Migration>(rows.Count);
            foreach (var row in rows)
            {
                migrations.Add(await ToMigrationAsync(coordinator, await _ledger.GetAsync(coordinator, row.Id, ct).ConfigureAwait(false), includeEvents: false, ct).ConfigureAwait(false));
            }

            return migrations;
        }
        finally
        {
            foreach (var phaseLock in locks.Values)
            {
                await phaseLock.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>RunAsync hands over the plans this file makes: extensions, and new view migrations (to print the search_path).</summary>
    private static bool IsVersionPlan(PhasePlan plan)
        => plan.Spec is ViewExtension or VersionPhase || (plan.Action == PhaseAction.Expand && plan.Spec is ColumnRenameView);

    private async Task<Migration> RunVersionPlanAsync(PhasePlan plan, CancellationToken ct)
    {
        var migration = plan.Spec switch
        {
            VersionPhase => throw new ArgumentException("A plan for a whole version schema completes or undoes several migrations; run it with RunVersionAsync.", nameof(plan)),
            ViewExtension extension => await RunExtensionAsync(plan, extension, ct).ConfigureAwait(false),
            _ => await RunExpandAsync(plan, ct).ConfigureAwait(false),
        };

        if (migration.Details.TryGetValue("VersionSchema", out var version))
        {
            Observer.Verbose($"Migration {migration.Id}: version schema {Ident.Quote(version)} is ready. {new SearchPathSetting(new[] { version, migration.Schema }).Describe()}");
        }

        return migration;
    }

    /// <summary>Runs an extension: renames the view's column and records the rename on the migration, in one transaction.</summary>
    private async Task<Migration> RunExtensionAsync(PhasePlan plan, ViewExtension extension, CancellationToken ct)
    {
        await using var coordinator = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(coordinator, ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(coordinator, extension.MigrationId, ct).ConfigureAwait(false);
        await using var phaseLock = (await _ledger.AcquirePhaseLockAsync(coordinator, row.TableOid, plan.Target, ct).ConfigureAwait(false)).Guarding(extension.MigrationId);
        row = await _ledger.GetAsync(coordinator, extension.MigrationId, ct).ConfigureAwait(false);
        var operation = (ColumnRenameView)OperationRegistry.FromLedger(row);
        RequireExtendable(row, operation.VersionSchemaName);
        var design = await operation.PlanExtendAsync(context, row, extension.Rename, ct).ConfigureAwait(false);
        RequireSamePlan(plan, design.Steps);
        var (columns, newNames) = ColumnRenameView.LedgerColumns(design.Spec);
        var step = design.Steps.Single();
        var label = $"extend: {step.Title}";
        Observer.Verbose($"Migration {row.Id}: {label}\n{step.Sql}");
        try
        {
            await _executor.RunAsync(
                step,
                async (connection, tx, token) =>
                {
                    await phaseLock.RequireHeldAsync(connection, tx!, row.Id, token).ConfigureAwait(false);
                    await _ledger.ReplaceSpecAsync(connection, tx!, row.Id, MigrationLedger.ToJson(design.Spec), columns, newNames, token).ConfigureAwait(false);
                    await _ledger.AddEventAsync(connection, tx, row.Id, label, row.Phase, row.Phase, step.Sql, design.Summary, token).ConfigureAwait(false);
                },
                ct).ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            // The step is one transaction: nothing changed, the migration stays as it was; say why in the ledger.
            await RecordErrorAsync(row.Id, row.Phase, null, "extend", Target.Scrub(failure.Message)).ConfigureAwait(false);
            throw;
        }
        row = await _ledger.GetAsync(coordinator, row.Id, ct).ConfigureAwait(false);
        return await ToMigrationAsync(coordinator, row, includeEvents: false, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The table's active migration when it is a view rename in this version schema (to extend);
    /// null when the table has none (a new migration starts, and planning reports a missing table);
    /// an error when its active migration is anything else.
    /// </summary>
    private static async Task<LedgerRow?> FindMigrationToExtendAsync(PlanningContext context, string schema, string table, string version, CancellationToken ct)
    {
        Ident.Validate(schema, "schema name");
        Ident.Validate(table, "table name");
        var oid = await context.Catalog.FindRelationAsync(schema, table, ct).ConfigureAwait(false);
        var active = oid is null ? null : await context.Ledger.FindActiveAsync(context.Connection, oid.Value, ct).ConfigureAwait(false);
        if (active is null || active.Operation != ColumnRenameView.KindName)
        {
            // No migration, or one of another kind: planning a new migration reports it precisely.
            return null;
        }

        var operation = (ColumnRenameView)OperationRegistry.FromLedger(active);
        if (operation.VersionSchemaName != version)
        {
            throw new ZdtException(
                ErrorIds.MigrationAlreadyActive,
                ErrorKind.ResourceExists,
                $"Table {Ident.Qualify(schema, table)} already has migration {active.Id}, which renames its columns in version schema {Ident.Quote(operation.VersionSchemaName)} (phase {active.Phase}). A table is in one version at a time: add this rename to that version (-VersionSchema {operation.VersionSchemaName}), or complete or undo it first. Nothing was changed.")
            { TargetObject = active.Id };
        }

        RequireExtendable(active, version);
        return active;
    }

    private static void RequireExtendable(LedgerRow row, string version)
    {
        if (row.Phase != MigrationPhase.Expanded)
        {
            throw new ZdtException(
                ErrorIds.PhaseOutOfOrder,
                ErrorKind.InvalidOperation,
                $"Migration {row.Id} ({row.Operation} of {Ident.Qualify(row.Schema, row.Table)} in version schema {Ident.Quote(version)}) is in phase {row.Phase}; a rename can be added to it only in phase Expanded. Nothing was changed.")
            { TargetObject = row.Id };
        }
    }

    private async Task<PhasePlan> PlanVersionPhaseAsync(string versionSchema, PhaseAction action, CancellationToken ct)
    {
        Ident.Validate(versionSchema, "version schema name");
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(connection, ct).ConfigureAwait(false);
        var rows = await VersionMigrationsAsync(connection, versionSchema, ct).ConfigureAwait(false);
        var design = await DesignVersionAsync(context, versionSchema, rows, action, ct).ConfigureAwait(false);
        return new PhasePlan(ColumnRenameView.KindName, action, null, Ident.Quote(versionSchema), design.Summary, design.Steps, new VersionPhase(versionSchema, rows.Select(r => r.Id).ToList()));
    }

    private static async Task<PhaseDesign> DesignVersionAsync(PlanningContext context, string versionSchema, IReadOnlyList<LedgerRow> rows, PhaseAction action, CancellationToken ct)
    {
        if (rows.Count == 0)
        {
            throw new ZdtException(
                ErrorIds.VersionNotFound,
                ErrorKind.ObjectNotFound,
                $"No active migration renames columns in version schema {Ident.Quote(versionSchema)} (names are exact). Get-Migration -Active lists the active ones and their VersionSchema.")
            { TargetObject = versionSchema };
        }

        var migrations = new List<(ColumnRenameView, LedgerRow)>(rows.Count);
        foreach (var row in rows)
        {
            var operation = (ColumnRenameView)OperationRegistry.FromLedger(row);
            RequirePhase(row, operation, action);
            migrations.Add((operation, row));
        }

        return await ColumnRenameView.PlanTogetherAsync(context, versionSchema, migrations, action, Ident.Quote(versionSchema), ct).ConfigureAwait(false);
    }

    /// <summary>Runs the version's one step (if any); the same transaction moves every migration to its final phase.</summary>
    private async Task RunTogetherAsync(IReadOnlyList<LedgerRow> rows, string action, PhaseDesign design, MigrationPhase done, CancellationToken ct)
    {
        if (design.Steps.Count == 0)
        {
            await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
            await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            foreach (var row in rows)
            {
                await _ledger.RequirePhaseLockAsync(connection, tx, row.Id, ct).ConfigureAwait(false);
                await _ledger.SetPhaseAsync(connection, tx, row.Id, row.Phase, done, action, null, design.Summary + " (nothing left to change)", ct).ConfigureAwait(false);
            }

            await tx.CommitAsync(ct).ConfigureAwait(false);
            return;
        }

        var step = design.Steps.Single();
        var label = $"{action} of version schema: {step.Title}";
        var sql = step.Sql;
        Observer.Verbose($"Migrations {string.Join(", ", rows.Select(r => r.Id))}: {label}\n{sql}");
        await _executor.RunAsync(
            step,
            async (connection, tx, token) =>
            {
                foreach (var row in rows)
                {
                    await _ledger.RequirePhaseLockAsync(connection, tx!, row.Id, token).ConfigureAwait(false);
                    await _ledger.SetPhaseAsync(connection, tx, row.Id, row.Phase, done, label, sql, design.Summary, token).ConfigureAwait(false);
                }
            },
            ct).ConfigureAwait(false);
    }

    /// <summary>The active view-rename migrations of a version schema, by id.</summary>
    private async Task<IReadOnlyList<LedgerRow>> VersionMigrationsAsync(NpgsqlConnection connection, string versionSchema, CancellationToken ct)
    {
        var active = await _ledger.QueryAsync(connection, new MigrationQuery { ActiveOnly = true }, ct).ConfigureAwait(false);
        return active
            .Where(r => r.Operation == ColumnRenameView.KindName && ((ColumnRenameView)OperationRegistry.FromLedger(r)).VersionSchemaName == versionSchema)
            .OrderBy(r => r.Id)
            .ToList();
    }

    /// <summary>The plan of adding a rename to an existing view migration.</summary>
    private sealed record ViewExtension(long MigrationId, ColumnRenameView.Rename Rename);

    /// <summary>The plan of a contract or undo of a whole version schema: which migrations it covers.</summary>
    private sealed record VersionPhase(string VersionSchema, IReadOnlyList<long> MigrationIds);
}
