using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Operations.Partitions;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// What a column copy does differently on a declaratively partitioned table; everything else (the
/// new column, the sync trigger, the swap) is the same statements on the parent, which PostgreSQL
/// applies to every partition: ADD/DROP/RENAME COLUMN, SET DEFAULT and SET NOT NULL recurse, and a
/// row trigger on the parent is cloned to every partition, also to one created or attached later
/// (BEFORE row triggers on a partitioned table: PostgreSQL 13+). The differences: an index copy is
/// built through <see cref="PartitionedIndexBuild"/> (CREATE INDEX CONCURRENTLY is refused on a
/// partitioned table); a CHECK copy is added at contract through <see cref="PartitionedConstraint"/>
/// (per partition NOT VALID + VALIDATE, then per level), not NOT VALID on the parent at expand,
/// which would lock every partition at once; the old column's indexes are not dropped early (a
/// partitioned index cannot be dropped concurrently) and go with the column in the swap; the
/// backfill and parity walk each leaf partition (<see cref="PartitionLeaves"/>).
/// </summary>
internal sealed class PartitionedCopy
{
    /// <summary>BEFORE row triggers (the sync trigger) on a partitioned table exist from PostgreSQL 13 on.</summary>
    public const int SupportedFrom = 130000;

    private readonly string _schema;
    private readonly string _table;

    public PartitionedCopy(string schema, string table)
    {
        _schema = schema;
        _table = table;
    }

    private string TableName => Ident.Qualify(_schema, _table);

    /// <summary>
    /// Refuses, before anything changes, what a copy on a partitioned table cannot do yet or at
    /// all: a server before 13, a column of any level's partition key (it cannot be dropped), and
    /// dependents whose copy on a partitioned table is not built yet (unique constraints, foreign
    /// keys, a NULLS NOT DISTINCT index, the replica identity or CLUSTER mark).
    /// </summary>
    public async Task RequireCopyableAsync(PlanningContext context, TableInfo table, ColumnInfo column, IReadOnlyList<CopiedObject> copies, string noun, CancellationToken ct)
    {
        var problems = new List<string>();
        if (context.ServerVersion < SupportedFrom)
        {
            problems.Add("the sync trigger is a BEFORE row trigger on the partitioned table, which PostgreSQL allows from 13 on");
        }

        var tree = await PartitionTree.ReadAsync(context.Connection, table.Oid, ct).ConfigureAwait(false);
        foreach (var level in tree.Nodes.Where(n => n.IsPartitioned && tree.KeyOf(n).Contains(column.Name, StringComparer.Ordinal)))
        {
            problems.Add($"it is part of the partition key of {level.QualifiedName}, which a copy cannot take over (the old column cannot be dropped)");
        }

        foreach (var copy in copies)
        {
            var unsupported = copy.Kind switch
            {
                CopiedObjectKind.Unique or CopiedObjectKind.PrimaryKey => "a unique constraint",
                CopiedObjectKind.ForeignKey or CopiedObjectKind.IncomingForeignKey => "a foreign key",
                _ when copy.BuildAtContract => "a NULLS NOT DISTINCT index",
                _ when copy.ReplicaIdentity => "the replica identity index",
                _ when copy.Clustered => "an index marked for CLUSTER",
                _ => null,
            };
            if (unsupported is not null)
            {
                problems.Add($"{unsupported} ({Ident.Quote(copy.Original)}) uses it, whose copy on a partitioned table ZeroDowntime does not build yet");
            }
        }

        if (tree.Leaves.Any(n => n.Kind == 'f'))
        {
            problems.Add($"the partition {tree.Leaves.First(n => n.Kind == 'f').QualifiedName} is a foreign table, which the backfill cannot walk");
        }

        if (problems.Count > 0)
        {
            throw new ZdtException(
                ErrorIds.ColumnCannotBeCopied,
                ErrorKind.InvalidOperation,
                $"Cannot {noun} {TableName}.{Ident.Quote(column.Name)} of the partitioned table by copy: {string.Join("; ", problems)}. Use -Strategy View (a rename), or change the column on each partition's own terms. Nothing was changed.")
            { TargetObject = $"{TableName}.{Ident.Quote(column.Name)}" };
        }
    }

    /// <summary>
    /// The expand's second transaction: the sync function and its row triggers on the parent
    /// (<paramref name="statements"/>; <see cref="PartitionedTriggerStep"/>). A write between the
    /// two transactions leaves the new column NULL or at its default, out of step: the backfill
    /// (which starts after the expand, between bounds taken then) brings every out-of-step row in
    /// step, and the parity check proves it, as it does for the rows written before the expand.
    /// </summary>
    public DdlStep SyncTriggerStep(IReadOnlyList<string> statements) => PartitionedTriggerStep.Create("the sync trigger", TableName, statements);

    /// <summary>
    /// The index copies' steps still to run, each through <see cref="PartitionedIndexBuild"/>:
    /// ON ONLY on the parent, each partition CONCURRENTLY and attached. Planned from the catalog, so
    /// the contract plans it again and builds what a partition created or attached since the
    /// expand lacks (PostgreSQL gives a new partition the index itself; an INVALID leftover of a
    /// killed build is rebuilt).
    /// </summary>
    public Task<IReadOnlyList<DdlStep>> IndexStepsAsync(PlanningContext context, TableInfo table, IReadOnlyList<CopiedObject> copies, CancellationToken ct)
        => StepsPerCopyAsync(context, table, copies, CopiedObjectKind.Index, async (tree, copy) =>
            (await PartitionedIndexBuild.PlanAsync(context, tree, Shape(copy), ct).ConfigureAwait(false)).Steps, ct);

    /// <summary>The CHECK copies, validated on every partition and level without a scan under a strong lock (contract).</summary>
    public Task<IReadOnlyList<DdlStep>> CheckStepsAsync(PlanningContext context, TableInfo table, IReadOnlyList<CopiedObject> copies, CancellationToken ct)
        => StepsPerCopyAsync(context, table, copies, CopiedObjectKind.Check, async (tree, copy) =>
            (await PartitionedConstraint.ReadAsync(context.Connection, tree, copy.Building, PartitionedConstraintKind.Check, null, ct).ConfigureAwait(false))
                .AddAndValidate(CheckExpression(copy.Definition)), ct);

    /// <summary>
    /// Swap statements after the old column is gone: each partition's copy of an index whose name
    /// is kept (a type change; a rename of an index whose name does not hold the column's) takes
    /// the name its partition's original had, as a plain ALTER COLUMN on the parent leaves them.
    /// While both existed the copies had to be numbered (orders_2024_qty_idx1); PostgreSQL names
    /// the copy on a partition created meanwhile after the new column. Read from the two index
    /// trees (pg_partition_tree of an index gives its partitions' indexes at every level), paired by table.
    /// </summary>
    public async Task<IReadOnlyList<string>> KeptIndexNamesAsync(PlanningContext context, IReadOnlyList<CopiedObject> copies, CancellationToken ct)
    {
        const string sql = """
            SELECT nn.nspname, nc.relname, oc.relname
            FROM pg_partition_tree(to_regclass($1)) nt
            JOIN pg_index ni ON ni.indexrelid = nt.relid
            JOIN pg_class nc ON nc.oid = nt.relid
            JOIN pg_namespace nn ON nn.oid = nc.relnamespace
            JOIN pg_partition_tree(to_regclass($2)) ot ON ot.level > 0
            JOIN pg_index oi ON oi.indexrelid = ot.relid AND oi.indrelid = ni.indrelid
            JOIN pg_class oc ON oc.oid = ot.relid
            WHERE nt.level > 0 AND nc.relname <> oc.relname
            ORDER BY nt.level, nc.relname
            """;
        var statements = new List<string>();
        foreach (var copy in copies.Where(c => c.Kind == CopiedObjectKind.Index && c.Final == c.Original))
        {
            await using var cmd = new NpgsqlCommand(sql, context.Connection);
            cmd.Parameters.Add(new NpgsqlParameter { Value = Ident.Qualify(_schema, copy.Building) });
            cmd.Parameters.Add(new NpgsqlParameter { Value = Ident.Qualify(_schema, copy.Original) });
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                statements.Add($"ALTER INDEX {Ident.Qualify(reader.GetString(0), reader.GetString(1))} RENAME TO {Ident.Quote(reader.GetString(2))}");
            }
        }

        return statements;
    }

    /// <summary>The steps of every copy of one kind, each planned against the partition tree as it is now (read once, and only when there is such a copy).</summary>
    private static async Task<IReadOnlyList<DdlStep>> StepsPerCopyAsync(
        PlanningContext context,
        TableInfo table,
        IReadOnlyList<CopiedObject> copies,
        CopiedObjectKind kind,
        Func<PartitionTree, CopiedObject, Task<IEnumerable<DdlStep>>> plan,
        CancellationToken ct)
    {
        var steps = new List<DdlStep>();
        var ofKind = copies.Where(c => c.Kind == kind).ToList();
        if (ofKind.Count == 0)
        {
            return steps;
        }

        var tree = await PartitionTree.ReadAsync(context.Connection, table.Oid, ct).ConfigureAwait(false);
        foreach (var copy in ofKind)
        {
            steps.AddRange(await plan(tree, copy).ConfigureAwait(false));
        }

        return steps;
    }

    /// <summary>
    /// The contract's re-check of every leaf partition, the ones created or attached since the
    /// expand included: each has the new column and the sync triggers, enabled. A partition that
    /// is not ready is named in the refusal, before anything changes: its rows could otherwise be
    /// out of step without the parity check being able to tell (a disabled trigger).
    /// </summary>
    public async Task RequireEveryPartitionReadyAsync(PlanningContext context, uint tableOid, string newColumn, IReadOnlyList<string> triggers, long migrationId, CancellationToken ct)
    {
        // Cloned triggers are tgisinternal before PostgreSQL 15, so they are looked up by name alone.
        const string sql = """
            SELECT t.relid::regclass::text,
                   EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = $2 AND NOT a.attisdropped),
                   ARRAY(SELECT g.tgname::text FROM pg_trigger g WHERE g.tgrelid = t.relid AND g.tgname = ANY ($3) AND g.tgenabled <> 'D')
            FROM pg_partition_tree($1::oid::regclass) t
            WHERE t.isleaf
            ORDER BY 1
            """;
        await using var cmd = new NpgsqlCommand(sql, context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = tableOid, NpgsqlDbType = NpgsqlDbType.Oid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = newColumn, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = triggers.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        var problems = new List<string>();
        await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var partition = reader.GetString(0);
                if (!reader.GetBoolean(1))
                {
                    problems.Add($"{partition} has no column {Ident.Quote(newColumn)}");
                    continue;
                }

                var present = reader.GetFieldValue<string[]>(2);
                var missing = triggers.Where(t => !present.Contains(t, StringComparer.Ordinal)).ToList();
                if (missing.Count > 0)
                {
                    problems.Add($"{partition} lacks the sync trigger {string.Join(", ", missing.Select(Ident.Quote))} or has it disabled");
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new ZdtException(
                ErrorIds.PartitionNotReady,
                ErrorKind.InvalidOperation,
                $"Refusing the contract of migration {migrationId}: not every partition of {TableName} is ready: {string.Join("; ", problems)}. Enable the trigger (ALTER TABLE partition ENABLE TRIGGER name), run Invoke-Backfill and Test-ColumnParity again, then Complete-Contract. Nothing was changed.")
            { TargetObject = migrationId };
        }
    }

    /// <summary>A copied index as <see cref="PartitionedIndexBuild"/> takes it; the partitions' indexes are named after the copy's final name, as a plain CREATE INDEX on the parent names them.</summary>
    private PartitionedIndexShape Shape(CopiedObject copy)
    {
        var unique = copy.Definition.StartsWith("CREATE UNIQUE ", StringComparison.Ordinal);
        var tail = PartitionedIndexShape.TailOf(copy.Definition);
        var prefix = _table + "_";
        var suffix = copy.Final.StartsWith(prefix, StringComparison.Ordinal) && copy.Final.Length > prefix.Length ? copy.Final[prefix.Length..] : copy.Final;
        return new PartitionedIndexShape(
            copy.Building,
            unique,
            tail,
            suffix,
            (target, quotedName, concurrently) => $"CREATE {(unique ? "UNIQUE " : "")}INDEX {(concurrently ? "CONCURRENTLY " : "")}{quotedName} ON {target} {tail}");
    }

    /// <summary>The expression of a copied CHECK's definition ("CHECK (expr) NOT VALID").</summary>
    private static string CheckExpression(string definition)
    {
        const string head = "CHECK (";
        const string notValid = " NOT VALID";
        var body = definition.EndsWith(notValid, StringComparison.Ordinal) ? definition[..^notValid.Length] : definition;
        return body.StartsWith(head, StringComparison.Ordinal) && body.EndsWith(')') ? body[head.Length..^1] : body;
    }
}
