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
/// which would lock every partition at once, and so is a foreign key copy; a unique constraint copy
/// is built per partition and adopted by the parent (<see cref="PartitionedKeyConstraint"/>); a
/// type change's primary key copy is an index per leaf, made the key in the swap; the old column's
/// indexes are not dropped early (a
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
    /// dependents whose copy on a partitioned table is not built yet (another table's foreign key
    /// referencing it, a NULLS NOT DISTINCT index, a key with INCLUDE columns, the replica identity
    /// or CLUSTER mark).
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
                CopiedObjectKind.IncomingForeignKey => "a foreign key of another table referencing it",
                _ when copy.BuildAtContract => "a NULLS NOT DISTINCT index",
                _ when copy.ReplicaIdentity => "the replica identity index",
                _ when copy.Clustered => "an index marked for CLUSTER",
                CopiedObjectKind.Unique or CopiedObjectKind.PrimaryKey when PartitionedIndexShape.TailOf(copy.Definition).Contains(" INCLUDE (", StringComparison.Ordinal) => "a key with INCLUDE columns",
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
    public Task<IReadOnlyList<DdlStep>> IndexStepsAsync(PlanningContext context, PartitionTree tree, IReadOnlyList<CopiedObject> copies, CancellationToken ct)
        => StepsPerCopyAsync(copies, CopiedObjectKind.Index, async copy =>
            (await PartitionedIndexBuild.PlanAsync(context, tree, Shape(copy), ct).ConfigureAwait(false)).Steps);

    /// <summary>The CHECK copies, validated on every partition and level without a scan under a strong lock (contract).</summary>
    public Task<IReadOnlyList<DdlStep>> CheckStepsAsync(PlanningContext context, PartitionTree tree, IReadOnlyList<CopiedObject> copies, CancellationToken ct)
        => StepsPerCopyAsync(copies, CopiedObjectKind.Check, async copy =>
            (await PartitionedConstraint.ReadAsync(context.Connection, tree, copy.Building, PartitionedConstraintKind.Check, null, ct).ConfigureAwait(false))
                .AddAndValidate(CheckExpression(copy.Definition)));

    /// <summary>
    /// The unique constraint copies (expand): each leaf's unique index built concurrently and made
    /// its constraint USING INDEX, then the parent's ADD, which adopts them
    /// (<see cref="PartitionedKeyConstraint"/>). A partition created later gets the constraint from
    /// the parent. The copy's columns are the original's with <paramref name="oldColumn"/> replaced
    /// by <paramref name="newColumn"/>.
    /// </summary>
    public Task<IReadOnlyList<DdlStep>> UniqueStepsAsync(PlanningContext context, PartitionTree tree, TableInfo table, IReadOnlyList<CopiedObject> copies, string oldColumn, string newColumn, CancellationToken ct)
        => StepsPerCopyAsync(copies, CopiedObjectKind.Unique, async copy =>
        {
            var columns = ConstraintColumns(table, copy.Original).Select(c => c == oldColumn ? newColumn : c).ToList();
            return (await PartitionedKeyConstraint.PlanAsync(context, tree, copy.Building, primary: false, columns, ct, copy.AttachOptions).ConfigureAwait(false)).Steps(context);
        });

    /// <summary>
    /// The primary key copy's unique index on each leaf partition, built concurrently (expand; the
    /// contract plans it again for a partition created or attached since, and rebuilds an INVALID
    /// leftover of a killed build). The key itself is made in the swap (<see cref="PrimaryKeySwapAsync"/>):
    /// a partitioned table has no ADD PRIMARY KEY USING INDEX, and two primary keys cannot coexist.
    /// </summary>
    public Task<IReadOnlyList<DdlStep>> PrimaryKeyIndexStepsAsync(PlanningContext context, PartitionTree tree, IReadOnlyList<CopiedObject> copies, CancellationToken ct)
        => StepsPerCopyAsync(copies, CopiedObjectKind.PrimaryKey, async copy =>
        {
            var tail = PartitionedIndexShape.TailOf(copy.Definition);
            var leaves = tree.Leaves.Where(l => l.Kind != 'f').Select(l => (Leaf: l, Name: LeafKeyIndexName(l))).ToList();
            var found = await IndexStates.ReadAsync(context.Connection, leaves.Select(l => Ident.Qualify(l.Leaf.Schema, l.Name)), ct).ConfigureAwait(false);
            var steps = new List<DdlStep>();
            foreach (var (leaf, name) in leaves)
            {
                var state = found.TryGetValue(Ident.Qualify(leaf.Schema, name), out var existing) ? existing : (IndexState?)null;
                if (state is { Valid: true })
                {
                    continue;
                }

                steps.Add(PartitionedIndexBuild.ConcurrentLeafStep(
                    context,
                    leaf,
                    name,
                    $"CREATE UNIQUE INDEX CONCURRENTLY {Ident.Quote(name)} ON {leaf.QualifiedName} {tail}",
                    rebuild: state is not null,
                    "the primary key's new unique index",
                    "the swap makes it the partition's primary key"));
            }

            return steps;
        });

    /// <summary>
    /// The foreign key copies (contract, once the backfill has filled the new column): each leaf
    /// NOT VALID and validated, then the parent's ADD, which attaches them without a scan
    /// (<see cref="PartitionedConstraint.AddForeignKey"/>; PostgreSQL 13..17 refuse NOT VALID on a
    /// partitioned table). Planned from the catalog, so a resumed contract continues.
    /// </summary>
    public Task<IReadOnlyList<DdlStep>> ForeignKeyStepsAsync(PlanningContext context, PartitionTree tree, TableInfo table, IReadOnlyList<CopiedObject> copies, CancellationToken ct)
        => StepsPerCopyAsync(copies, CopiedObjectKind.ForeignKey, async copy =>
        {
            var referenced = table.Constraints.First(c => c.Name == copy.Original).ReferencedTable!;
            return (await PartitionedConstraint.ReadAsync(context.Connection, tree, copy.Building, PartitionedConstraintKind.ForeignKey, null, ct).ConfigureAwait(false))
                .AddForeignKey(NotValidClause.Strip(copy.Definition), referenced);
        });

    /// <summary>
    /// The swap's statements for the primary key copy, after the old column (and with it the old
    /// key on every level) is gone: each leaf's new index becomes its primary key under the name
    /// its old one had, then the parent's ADD PRIMARY KEY adopts them and builds nothing (the new
    /// column is NOT NULL on every partition by then). Its columns are the old key's, which by then
    /// name the new column (<paramref name="finalName"/> replaces <paramref name="oldColumn"/>).
    /// </summary>
    public async Task<IReadOnlyList<string>> PrimaryKeySwapAsync(PlanningContext context, PartitionTree tree, TableInfo table, IReadOnlyList<CopiedObject> copies, string oldColumn, string finalName, CancellationToken ct)
    {
        if (copies.FirstOrDefault(c => c.Kind == CopiedObjectKind.PrimaryKey) is not { } copy)
        {
            return Array.Empty<string>();
        }

        const string sql = """
            SELECT i.indrelid, c.relname
            FROM pg_partition_tree(to_regclass($1)) t
            JOIN pg_index i ON i.indexrelid = t.relid
            JOIN pg_class c ON c.oid = t.relid
            WHERE t.isleaf
            """;
        var leafKeyNames = new Dictionary<uint, string>();
        await using (var cmd = new NpgsqlCommand(sql, context.Connection))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = Ident.Qualify(_schema, copy.Original) });
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                leafKeyNames[reader.GetFieldValue<uint>(0)] = reader.GetString(1);
            }
        }

        var statements = new List<string>();
        foreach (var leaf in tree.Leaves.Where(l => l.Kind != 'f'))
        {
            var name = leafKeyNames.GetValueOrDefault(leaf.Oid) ?? Ident.Derive(leaf.Name + "_", "pkey");
            statements.Add($"ALTER TABLE {leaf.QualifiedName} ADD CONSTRAINT {Ident.Quote(name)} PRIMARY KEY USING INDEX {Ident.Quote(LeafKeyIndexName(leaf))}");
        }

        var columns = ConstraintColumns(table, copy.Original).Select(c => Ident.Quote(c == oldColumn ? finalName : c));
        statements.Add($"ALTER TABLE {TableName} ADD CONSTRAINT {Ident.Quote(copy.Final)} PRIMARY KEY ({string.Join(", ", columns)})");
        if (copy.Comment is not null)
        {
            statements.Add($"COMMENT ON INDEX {Ident.Qualify(_schema, copy.Final)} IS {Ident.Literal(copy.Comment)}");
        }

        return statements;
    }

    /// <summary>
    /// Swap statements after the old column is gone: a foreign key copy's constraint on each
    /// partition and sub-partitioned level takes its final name too (RENAME CONSTRAINT on the
    /// parent renames the parent's alone), as the plain ALTER's partitions are named.
    /// </summary>
    public static IReadOnlyList<string> ForeignKeyPartitionNames(PartitionTree tree, IReadOnlyList<CopiedObject> copies)
    {
        return copies
            .Where(c => c.Kind == CopiedObjectKind.ForeignKey && c.Building != c.Final)
            .SelectMany(c => tree.Nodes.Skip(1).Select(n => $"ALTER TABLE {n.QualifiedName} RENAME CONSTRAINT {Ident.Quote(c.Building)} TO {Ident.Quote(c.Final)}"))
            .ToList();
    }

    /// <summary>The name of the primary key copy's index on a leaf until the swap makes it the leaf's key (USING INDEX renames it to the key's name).</summary>
    private static string LeafKeyIndexName(PartitionNode leaf) => Ident.Derive(leaf.Name + "_", "pkey_zdt");

    /// <summary>A constraint's key columns by name, in order.</summary>
    private static IReadOnlyList<string> ConstraintColumns(TableInfo table, string constraint)
        => table.Constraints.First(c => c.Name == constraint).Columns.Select(n => table.ColumnByNumber(n).Name).ToList();

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
        foreach (var copy in copies.Where(c => (c.Kind is CopiedObjectKind.Index or CopiedObjectKind.Unique) && c.Final == c.Original))
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

    /// <summary>The steps of every copy of one kind, in the order of the copies.</summary>
    private static async Task<IReadOnlyList<DdlStep>> StepsPerCopyAsync(IReadOnlyList<CopiedObject> copies, CopiedObjectKind kind, Func<CopiedObject, Task<IEnumerable<DdlStep>>> plan)
    {
        var steps = new List<DdlStep>();
        foreach (var copy in copies.Where(c => c.Kind == kind))
        {
            steps.AddRange(await plan(copy).ConfigureAwait(false));
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
        var body = NotValidClause.Strip(definition);
        return body.StartsWith(head, StringComparison.Ordinal) && body.EndsWith(')') ? body[head.Length..^1] : body;
    }
}
