using Npgsql;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine;

/// <summary>
/// Safe additions on large tables. Adding a column and making one NOT NULL are migrations with
/// phases (they hold the table's active-migration slot; RunAsync runs their expand, then
/// Invoke-Backfill, Complete-Contract and Undo-Migration work on them as on any migration).
/// Creating or dropping an index, adding a constraint and raw DDL run to their end in one call
/// (PhaseAction.Apply): RunAsync runs every step, checks the result, removes what a failed step
/// left, and records the outcome in the ledger as Completed or Failed.
/// </summary>
public sealed partial class MigrationEngine
{
    public Task<PhasePlan> PlanAddColumnAsync(AddColumnRequest request, CancellationToken cancellationToken = default)
        => PlanExpandAsync(new AddColumn(new AddColumn.Spec(request.Schema, request.Table, request.Column, request.Type, request.Default, request.NotNull)), request.Tag, cancellationToken);

    public Task<PhasePlan> PlanSetColumnNotNullAsync(SetColumnNotNullRequest request, CancellationToken cancellationToken = default)
        => PlanExpandAsync(new SetColumnNotNull(new SetColumnNotNull.Spec(request.Schema, request.Table, request.Column)), request.Tag, cancellationToken);

    public async Task<PhasePlan> PlanCreateIndexAsync(CreateIndexRequest request, CancellationToken cancellationToken = default)
    {
        var operation = new IndexCreation(new IndexCreation.Spec(request.Schema, request.Table, request.Name, request.Columns, request.Expressions, request.Include, request.Where, request.Method, request.Unique));
        if (request.IfNotExists && await ReadIndexAsync(request.Schema, operation.IndexName, cancellationToken).ConfigureAwait(false) is { } existing && existing.Table == request.Table)
        {
            await using var connection = await Target.OpenAsync(cancellationToken).ConfigureAwait(false);
            var created = (await _ledger.QueryAsync(connection, new MigrationQuery { Schema = request.Schema, Table = request.Table, Operations = [IndexCreation.KindName], Phases = [MigrationPhase.Completed] }, cancellationToken).ConfigureAwait(false))
                .LastOrDefault(row => MigrationLedger.FromJson<IndexCreation.Spec>(row.SpecJson).Name == operation.IndexName);
            var summary = $"The index {Sql.Ident.Qualify(request.Schema, operation.IndexName)} already exists{(existing.IsValid ? "" : " (INVALID: it serves no query; Remove-Index it and run again)")}: {existing.Definition}. Nothing to run (-IfNotExists).";
            return AlreadyDonePlan(created, PhaseAction.Apply, summary, Sql.Ident.Qualify(request.Schema, request.Table));
        }

        return await PlanApplyAsync(operation, request.Tag, cancellationToken).ConfigureAwait(false);
    }

    public async Task<PhasePlan> PlanDropIndexAsync(DropIndexRequest request, CancellationToken cancellationToken = default)
    {
        if (request.IfExists && await ReadIndexAsync(request.Schema, request.Name, cancellationToken).ConfigureAwait(false) is null)
        {
            return AlreadyDonePlan(null, PhaseAction.Apply, $"There is no index {Sql.Ident.Qualify(request.Schema, request.Name)}: nothing to remove (-IfExists).", Sql.Ident.Qualify(request.Schema, request.Name));
        }

        return await PlanApplyAsync(new IndexRemoval(new IndexRemoval.Spec(request.Schema, request.Name)), request.Tag, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>An index by exact name: its table, whether it is valid, and its definition; null when there is none.</summary>
    private async Task<(string Table, bool IsValid, string Definition)?> ReadIndexAsync(string schema, string name, CancellationToken ct)
    {
        const string sql = """
            SELECT t.relname, x.indisvalid, pg_catalog.pg_get_indexdef(i.oid)
            FROM pg_catalog.pg_class i
            JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
            JOIN pg_catalog.pg_index x ON x.indexrelid = i.oid
            JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
            WHERE n.nspname = $1 AND i.relname = $2
            """;
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = schema });
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await reader.ReadAsync(ct).ConfigureAwait(false) ? (reader.GetString(0), reader.GetBoolean(1), reader.GetString(2)) : null;
    }

    public Task<PhasePlan> PlanAddConstraintAsync(AddConstraintRequest request, CancellationToken cancellationToken = default)
        => PlanApplyAsync(
            new ConstraintAddition(new ConstraintAddition.Spec(
                request.Schema,
                request.Table,
                request.Kind,
                request.Name,
                request.Columns,
                request.Check,
                request.ReferencedSchema,
                request.ReferencedTable,
                request.ReferencedColumns,
                request.OnDelete,
                request.OnUpdate)),
            request.Tag,
            cancellationToken);

    /// <summary>Plans raw DDL; a known dangerous form is reported as an observer warning (and in the plan's step).</summary>
    public Task<PhasePlan> PlanSafeDdlAsync(SafeDdlRequest request, CancellationToken cancellationToken = default)
        => PlanApplyAsync(new SafeDdl(new SafeDdl.Spec(request.Sql, request.Schema, request.Table)), request.Tag, cancellationToken);

    private async Task<PhasePlan> PlanApplyAsync(OneShotOperation operation, string? tag, CancellationToken ct)
    {
        RequireValidTag(tag);
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(connection, ct).ConfigureAwait(false);
        var design = await operation.PlanExpandAsync(context, ct).ConfigureAwait(false);
        TableResolver.RefuseLedger(context, design.Table);
        foreach (var warning in operation.Warnings)
        {
            Observer.Warning(warning);
        }

        return new PhasePlan(operation.Kind, PhaseAction.Apply, null, design.Table.QualifiedName, design.Summary, design.Steps, operation) { Tag = tag };
    }

    private async Task<Migration> RunApplyAsync(PhasePlan plan, CancellationToken ct)
    {
        var operation = (OneShotOperation)plan.Spec;
        await using var coordinator = await Target.OpenAsync(ct).ConfigureAwait(false);
        await _ledger.EnsureCreatedAsync(coordinator, ct).ConfigureAwait(false);
        var context = await CreateContextAsync(coordinator, ct).ConfigureAwait(false);

        // Plan again: the schema may have changed since -WhatIf/-Confirm showed the plan.
        var design = await operation.PlanExpandAsync(context, ct).ConfigureAwait(false);
        TableResolver.RefuseLedger(context, design.Table);
        RequireSamePlan(plan, design.Steps);
        await using var phaseLock = await _ledger.AcquirePhaseLockAsync(coordinator, design.Table.Oid, design.Table.QualifiedName, ct).ConfigureAwait(false);
        var registration = new MigrationRegistration(
            operation.Kind, design.Table.Schema, design.Table.Name, design.Table.Oid, design.Column, design.NewName, design.Strategy, design.SpecJson, null, design.Summary)
        {
            Tag = plan.Tag,
        };
        var sql = string.Join("\n", design.Steps.Select(s => s.Sql));
        try
        {
            for (var i = 0; i < design.Steps.Count; i++)
            {
                var step = design.Steps[i];
                Observer.Verbose($"{operation.Kind} step {i + 1}/{design.Steps.Count}: {step.Title}\n{step.Sql}");
                await _executor.RunAsync(step, null, ct).ConfigureAwait(false);
            }

            await operation.VerifyAsync(context, ct).ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            var error = await RecoverFailedApplyAsync(context, operation, failure).ConfigureAwait(false);
            await _ledger.RecordOneShotAsync(coordinator, registration, MigrationPhase.Failed, sql, Target.Scrub(error.Message), CancellationToken.None).ConfigureAwait(false);
            if (ReferenceEquals(error, failure))
            {
                throw;
            }

            throw error;
        }

        var id = await _ledger.RecordOneShotAsync(coordinator, registration, MigrationPhase.Completed, sql, null, ct).ConfigureAwait(false);
        Observer.Verbose($"{operation.Kind} recorded in the ledger as migration {id} (completed).");
        var row = await _ledger.GetAsync(coordinator, id, ct).ConfigureAwait(false);
        return await ToMigrationAsync(coordinator, row, includeEvents: false, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// After a failed step, removes what the earlier steps (or the failed concurrent build) left,
    /// through the lock-safe executor, then asks the operation to explain the failure in terms of
    /// the data. Returns the error to report.
    /// </summary>
    private async Task<Exception> RecoverFailedApplyAsync(PlanningContext context, OneShotOperation operation, Exception failure)
    {
        try
        {
            var rollback = await operation.PlanRollbackAsync(context, CancellationToken.None).ConfigureAwait(false);
            foreach (var step in rollback)
            {
                Observer.Warning($"{operation.Kind} failed ({Target.Scrub(failure.Message)}); {step.Title}: {string.Join("; ", step.Statements)}");
                await _executor.RunAsync(step, null, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception rollbackFailure) when (rollbackFailure is NpgsqlException or ZdtException or InvalidOperationException)
        {
            Observer.Warning($"{operation.Kind} failed, and removing what it left failed too ({Target.Scrub(rollbackFailure.Message)}). Check the table for an INVALID index or a NOT VALID constraint and drop it by hand.");
        }

        try
        {
            return await operation.ExplainFailureAsync(context, failure, CancellationToken.None).ConfigureAwait(false) ?? failure;
        }
        catch (Exception explainFailure) when (explainFailure is NpgsqlException or InvalidOperationException)
        {
            return failure;
        }
    }
}
