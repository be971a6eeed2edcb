using Npgsql;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// One DDL statement the module has no operation for, run as written through the lock-safe
/// executor: a short lock_timeout so that waiting for its lock never queues the application for
/// long, capped retries with backoff, and a report of who was in the way. Statements with
/// CONCURRENTLY (and VACUUM) run outside a transaction block. The known dangerous forms (a
/// rewriting ADD COLUMN, SET NOT NULL, CREATE INDEX without CONCURRENTLY, constraints without
/// NOT VALID, ALTER COLUMN TYPE, ...) get a warning naming the safe cmdlet. The statement is
/// parsed by the server before it is planned (as the body of a temporary SQL function, in a
/// rolled-back transaction, which parses without executing). One shot, recorded as completed.
/// </summary>
internal sealed class SafeDdl : OneShotOperation
{
    public const string KindName = "SafeDdl";

    private readonly Spec _spec;

    public SafeDdl(Spec spec)
    {
        _spec = spec;
    }

    public sealed record Spec(string Sql, string? Schema, string? Table);

    public override string Kind => KindName;

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        var ddl = DdlClassifier.Classify(_spec.Sql);
        if (ddl.Refusal is not null)
        {
            throw new ZdtException(ErrorIds.InvalidSql, ErrorKind.InvalidArgument, $"Invoke-SafeDdl runs one DDL statement, and this cannot be run: {ddl.Refusal}. Nothing was changed.")
            { TargetObject = _spec.Sql };
        }

        await ParseAsync(context, ddl.Statement, ct).ConfigureAwait(false);
        var table = await ResolveTableAsync(context, ddl, ct).ConfigureAwait(false);

        var warnings = new List<string>(ddl.Warnings);
        foreach (var column in ddl.AddedColumns)
        {
            if (await RewriteWarningAsync(context, column, ct).ConfigureAwait(false) is { } warning)
            {
                warnings.Add(warning);
            }
        }

        var cleanup = Array.Empty<string>();
        if (ddl.ConcurrentIndexName is { } indexName)
        {
            var taken = await context.Catalog.DescribeNameUseAsync(table.Schema, indexName, ct).ConfigureAwait(false);
            if (taken is not null && !ddl.IfNotExists)
            {
                await TableResolver.RequireNameFreeAsync(context, table.Schema, indexName, ct).ConfigureAwait(false);
            }

            // Only an index this statement builds may be dropped when the build fails.
            cleanup = taken is null ? new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {Ident.Qualify(table.Schema, indexName)}" } : cleanup;
        }

        Warnings = warnings;
        var why = "run as written under the lock-safe executor: a short lock_timeout, retried with backoff, blockers reported"
            + (ddl.Transactional ? "" : "; outside a transaction block, as CONCURRENTLY (or VACUUM) requires")
            + (warnings.Count == 0 ? "" : ". WARNING: " + string.Join(" WARNING: ", warnings));
        var step = new DdlStep($"Run: {OneLine(ddl.Statement, 80)}", new[] { ddl.Statement }, ddl.Lock, table.QualifiedName, why)
        {
            Transactional = ddl.Transactional,
            CleanupOnFailure = cleanup,
            LockTimeout = !ddl.Transactional && ddl.Lock <= LockLevel.ShareUpdateExclusive ? context.ConcurrentLockTimeout : null,
        };
        return new ExpandDesign(
            table,
            $"Run on {table.QualifiedName}: {OneLine(ddl.Statement, 200)}",
            new[] { step },
            Column: null,
            NewName: null,
            Strategy: "LockSafe",
            SpecJson: MigrationLedger.ToJson(_spec with { Schema = table.Schema, Table = table.Name }),
            RowsEstimated: null);
    }

    public override async Task<IReadOnlyList<DdlStep>> PlanRollbackAsync(PlanningContext context, CancellationToken ct)
    {
        // The statement runs as one step, so a failure leaves nothing but an INVALID index from a concurrent build.
        var ddl = DdlClassifier.Classify(_spec.Sql);
        if (ddl.ConcurrentIndexName is not { } name)
        {
            return Array.Empty<DdlStep>();
        }

        var table = await ResolveTableAsync(context, ddl, ct).ConfigureAwait(false);
        var index = Ident.Qualify(table.Schema, name);
        await using var cmd = new NpgsqlCommand("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = index });
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is true
            ? new[] { IndexCreation.DropStep(context, index, table.QualifiedName, "Drop the INVALID index the failed build left") }
            : Array.Empty<DdlStep>();
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration) => new Dictionary<string, string>
    {
        ["Table"] = Ident.Qualify(migration.Schema, migration.Table),
        ["Sql"] = _spec.Sql,
    };

    /// <summary>
    /// Has the server parse the statement without running it: as the body of a temporary SQL
    /// function (check_function_bodies parses it), in a transaction that is rolled back.
    /// </summary>
    private static Task ParseAsync(PlanningContext context, string statement, CancellationToken ct)
    {
        var tag = "$zdt$";
        for (var n = 1; statement.Contains(tag, StringComparison.Ordinal); n++)
        {
            tag = $"$zdt{n}$";
        }

        return ServerProbe.ValidateAsync(context, "statement", new[] { $"CREATE FUNCTION pg_temp.zdt_parse() RETURNS void LANGUAGE sql AS {tag}{statement}{tag}" }, ct);
    }

    private async Task<TableInfo> ResolveTableAsync(PlanningContext context, DdlClassification ddl, CancellationToken ct)
    {
        TableInfo? named = null;
        if (_spec.Table is not null)
        {
            named = await TableResolver.RequireTableAsync(context, _spec.Schema ?? "public", _spec.Table, allowPartitioned: true, ct, mustOwn: false).ConfigureAwait(false);
        }

        if (ddl.Relation is null)
        {
            return named ?? throw new ZdtException(
                ErrorIds.RawDdlNeedsTable,
                ErrorKind.InvalidArgument,
                "ZeroDowntime cannot tell from this statement which table it changes (it knows ALTER TABLE, CREATE/DROP INDEX, REINDEX, CREATE/DROP TRIGGER and POLICY, VACUUM, CLUSTER, ANALYZE, COMMENT ON TABLE, LOCK and TRUNCATE). Name the table with -Table (and -Schema): its locks are what the executor watches. Nothing was changed.");
        }

        var oid = await RelationOidAsync(context, ddl.Relation, ddl.RelationIsIndex, ct).ConfigureAwait(false)
            ?? throw new ZdtException(
                ErrorIds.TableNotFound,
                ErrorKind.ObjectNotFound,
                $"The statement changes the relation written as '{ddl.Relation}', which does not exist (the server resolved the name as it would: unquoted names fold to lower case, unqualified ones follow search_path). Nothing was changed.")
            { TargetObject = ddl.Relation };
        var table = await context.Catalog.ReadTableAsync(oid, ct).ConfigureAwait(false)
            ?? throw new ZdtException(ErrorIds.TableNotFound, ErrorKind.ObjectNotFound, $"The relation written as '{ddl.Relation}' does not exist. Nothing was changed.");
        if (table.Kind is not (RelationKind.Table or RelationKind.PartitionedTable))
        {
            throw new ZdtException(ErrorIds.NotATable, ErrorKind.InvalidArgument, $"{table.QualifiedName} is a {table.Kind}, not a table; Invoke-SafeDdl runs DDL on tables. Nothing was changed.");
        }

        if (named is not null && named.Oid != table.Oid)
        {
            throw new ZdtException(ErrorIds.TableMismatch, ErrorKind.InvalidArgument, $"The statement changes {table.QualifiedName}, but -Table names {named.QualifiedName}. Nothing was changed.");
        }

        return table;
    }

    /// <summary>The table's oid for a name as written; for an index, its table's. The server resolves the name (quoting, search_path).</summary>
    private static async Task<uint?> RelationOidAsync(PlanningContext context, string name, bool isIndex, CancellationToken ct)
    {
        var sql = isIndex
            ? "SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = to_regclass($1)"
            : "SELECT to_regclass($1)::oid";
        await using var cmd = new NpgsqlCommand(sql, context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        try
        {
            return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is uint oid ? oid : null;
        }
        catch (PostgresException)
        {
            // to_regclass raises for a malformed name (a.b.c.d) instead of returning NULL.
            return null;
        }
    }

    /// <summary>Asks the server whether adding this column rewrites the table (<see cref="ServerProbe.AddColumnRewritesAsync"/>).</summary>
    private static async Task<string?> RewriteWarningAsync(PlanningContext context, AddedColumn column, CancellationToken ct)
    {
        try
        {
            var rewrites = await ServerProbe.RunAsync(
                context,
                "column definition",
                async probe =>
                {
                    await probe.ExecuteAsync($"CREATE TEMP TABLE {ServerProbe.Table} ()").ConfigureAwait(false);
                    return await probe.AddColumnRewritesAsync(column.Definition).ConfigureAwait(false);
                },
                ct).ConfigureAwait(false);
            return rewrites
                ? $"ADD COLUMN {Ident.Quote(column.Name)} makes the server rewrite every row under ACCESS EXCLUSIVE (a volatile default, a constrained domain, an identity or stored generated column, or a server before 11): every query on the table waits until it is done. Use Add-Column, which adds it without a rewrite and backfills in batches."
                : null;
        }
        catch (ZdtException e) when (e.ErrorId == ErrorIds.InvalidSql)
        {
            // E.g. REFERENCES to a real table cannot be tried on a temporary one.
            return $"ZeroDowntime could not check whether ADD COLUMN {Ident.Quote(column.Name)} rewrites the table ({e.Message}). Add-Column decides that for you.";
        }
    }

    private static string OneLine(string sql, int max)
    {
        var line = string.Join(" ", sql.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return line.Length <= max ? line : line[..(max - 3)] + "...";
    }
}
