using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;
using Xunit.Abstractions;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// Add-CheckConstraint, Add-ForeignKey (from and to a partitioned table), Add-UniqueConstraint and
/// Add-PrimaryKey on a partitioned table of two levels with a default partition: each leaf first,
/// then the parent, which adopts them; the end state of the plain statement on a twin; a violation
/// in one partition counted, with nothing left on any level.
/// </summary>
public class PartitionedConstraintTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;
    private readonly ITestOutputHelper _output;

    public PartitionedConstraintTests(TestDatabase db, ITestOutputHelper output)
    {
        _db = db;
        _output = output;
    }

    /// <summary>Every constraint of every relation of the tree (definition, validated, whether it is attached to a parent's) and every index, tree name replaced by T.</summary>
    private async Task<string> ShapeAsync(string tree)
    {
        var constraints = await _db.ScalarAsync<string>($"""
            SELECT string_agg(c.conrelid::regclass::text || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid) || ' validated=' || c.convalidated
                              || ' local=' || c.conislocal || ' inherited=' || c.coninhcount || ' child=' || (c.conparentid <> 0), E'\n' ORDER BY c.conrelid::regclass::text, c.conname)
            FROM pg_partition_tree('{tree}') t JOIN pg_constraint c ON c.conrelid = t.relid
            """);
        return (constraints ?? "").Replace(tree, "T", StringComparison.Ordinal) + "\n" + await PartitionedTrees.IndexesAsync(_db, tree);
    }

    private Task<long> ForeignKeyTriggersAsync(string referenced, string tree) => _db.ScalarAsync<long>($"""
        SELECT count(*) FROM pg_trigger g JOIN pg_constraint c ON c.oid = g.tgconstraint
        WHERE g.tgrelid = '{referenced}'::regclass AND c.conrelid IN (SELECT relid FROM pg_partition_tree('{tree}'))
        """);

    private void WriteHeldLocks(RecordingObserver observer)
    {
        foreach (var held in observer.VerboseMessages.Where(m => m.Contains("held locks for", StringComparison.Ordinal)))
        {
            _output.WriteLine(held);
        }
    }

    [Fact]
    public async Task A_check_is_validated_per_partition_then_per_level_and_ends_as_the_plain_statement_on_a_twin()
    {
        await PartitionedTrees.CreateAsync(_db, "pck_a");
        await PartitionedTrees.CreateAsync(_db, "pck_b");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var plan = await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "pck_a", ConstraintKind.Check) { Name = "qty_range", Check = "qty BETWEEN 0 AND 100" });
        var statements = plan.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Equal(14, statements.Count);
        Assert.Equal("ALTER TABLE \"public\".\"pck_a_2020\" ADD CONSTRAINT \"qty_range\" CHECK (qty BETWEEN 0 AND 100) NOT VALID", statements[0]);
        Assert.Equal("ALTER TABLE \"public\".\"pck_a_2020\" VALIDATE CONSTRAINT \"qty_range\"", statements[1]);
        Assert.Equal("ALTER TABLE \"public\".\"pck_a_2022\" ADD CONSTRAINT \"qty_range\" CHECK (qty BETWEEN 0 AND 100) NOT VALID", statements[10]);
        Assert.Equal("ALTER TABLE \"public\".\"pck_a\" VALIDATE CONSTRAINT \"qty_range\"", statements[13]);

        var done = await engine.RunAsync(plan);
        await _db.ExecuteAsync("ALTER TABLE pck_b ADD CONSTRAINT qty_range CHECK (qty BETWEEN 0 AND 100)");

        Assert.Equal(MigrationPhase.Completed, done.Phase);
        Assert.Equal(await ShapeAsync("pck_b"), await ShapeAsync("pck_a"));
        Assert.Contains("T_2022_eu qty_range CHECK (((qty >= 0) AND (qty <= 100))) validated=true local=false inherited=1", await ShapeAsync("pck_a"), StringComparison.Ordinal);
        await using (var conn = await _db.OpenAsync())
        await using (var insert = new NpgsqlCommand("INSERT INTO pck_a VALUES (99999, '2022-03-01', 'eu', 101, NULL)", conn))
        {
            Assert.Equal(PostgresErrorCodes.CheckViolation, (await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync())).SqlState);
        }

        WriteHeldLocks(observer);
    }

    [Fact]
    public async Task A_check_violated_in_one_partition_is_counted_and_no_level_keeps_it()
    {
        await PartitionedTrees.CreateAsync(_db, "pck_v");
        await _db.ExecuteAsync("UPDATE pck_v SET qty = -1 WHERE id IN (7, 8) AND region = 'us'");
        var engine = Engines.For(_db);
        var before = await ShapeAsync("pck_v");

        var error = await Assert.ThrowsAsync<ZdtException>(async () => await engine.RunAsync(
            await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "pck_v", ConstraintKind.Check) { Name = "qty_positive", Check = "qty >= 0" })));

        Assert.Equal("ConstraintViolated", error.ErrorId);
        Assert.Equal(2L, error.TargetObject);
        Assert.Equal(before, await ShapeAsync("pck_v"));
    }

    [Fact]
    public async Task A_foreign_key_from_a_partitioned_table_is_validated_per_partition_then_attached_as_the_plain_statement_gives_it()
    {
        await PartitionedTrees.CreateAsync(_db, "pfk_a");
        await PartitionedTrees.CreateAsync(_db, "pfk_b");
        await _db.ExecuteAsync("CREATE TABLE pfk_ref (id integer PRIMARY KEY); INSERT INTO pfk_ref SELECT g FROM generate_series(0, 49) g;");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var plan = await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "pfk_a", ConstraintKind.ForeignKey) { Name = "qty_fkey", Columns = new[] { "qty" }, ReferencedTable = "pfk_ref" });
        var statements = plan.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Equal("ALTER TABLE \"public\".\"pfk_a_2020\" ADD CONSTRAINT \"qty_fkey\" FOREIGN KEY (\"qty\") REFERENCES \"public\".\"pfk_ref\" (\"id\") NOT VALID", statements[0]);
        Assert.Equal("ALTER TABLE \"public\".\"pfk_a_2020\" VALIDATE CONSTRAINT \"qty_fkey\"", statements[1]);
        Assert.DoesNotContain(statements, s => s.StartsWith("ALTER TABLE \"public\".\"pfk_a\" ", StringComparison.Ordinal) && s.EndsWith("NOT VALID", StringComparison.Ordinal));
        Assert.Equal(
            new[] { "LOCK TABLE \"public\".\"pfk_ref\" IN ACCESS EXCLUSIVE MODE", "ALTER TABLE \"public\".\"pfk_a\" ADD CONSTRAINT \"qty_fkey\" FOREIGN KEY (\"qty\") REFERENCES \"public\".\"pfk_ref\" (\"id\")" },
            plan.Steps[^1].Statements);
        Assert.Equal(11, plan.Steps.Count);

        var done = await engine.RunAsync(plan);
        await _db.ExecuteAsync("ALTER TABLE pfk_b ADD CONSTRAINT qty_fkey FOREIGN KEY (qty) REFERENCES pfk_ref (id)");

        Assert.Equal(MigrationPhase.Completed, done.Phase);
        Assert.Equal(await ShapeAsync("pfk_b"), await ShapeAsync("pfk_a"));
        Assert.Equal(await ForeignKeyTriggersAsync("pfk_ref", "pfk_b"), await ForeignKeyTriggersAsync("pfk_ref", "pfk_a"));
        await using (var conn = await _db.OpenAsync())
        await using (var insert = new NpgsqlCommand("INSERT INTO pfk_a VALUES (99999, '2022-03-01', 'eu', 77, NULL)", conn))
        {
            Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, (await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync())).SqlState);
        }

        WriteHeldLocks(observer);
    }

    [Fact]
    public async Task The_parent_foreign_key_attaches_the_partitions_keys_without_checking_their_rows()
    {
        // Proves the last step scans nothing: a row that violates the key is slipped into a
        // partition past its triggers after the partition's key was validated; the parent's ADD
        // still succeeds, which it would not if it checked the rows.
        await PartitionedTrees.CreateAsync(_db, "pfk_s", rows: 200);
        await _db.ExecuteAsync("CREATE TABLE pfk_s_ref (id integer PRIMARY KEY); INSERT INTO pfk_s_ref SELECT g FROM generate_series(0, 49) g;");
        var engine = Engines.For(_db);
        var plan = await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "pfk_s", ConstraintKind.ForeignKey) { Name = "qty_fkey", Columns = new[] { "qty" }, ReferencedTable = "pfk_s_ref" });
        foreach (var step in plan.Steps.Take(plan.Steps.Count - 1))
        {
            await _db.ExecuteAsync(string.Join(";\n", step.Statements));
        }

        await _db.ExecuteAsync("SET session_replication_role = replica; INSERT INTO pfk_s_2021 VALUES (99999, '2021-03-01', 'eu', 77, NULL); RESET session_replication_role;");
        await _db.ExecuteAsync("BEGIN; " + string.Join(";\n", plan.Steps[^1].Statements) + "; COMMIT;");

        Assert.Equal(7L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('pfk_s') t ON t.relid = c.conrelid WHERE c.conname = 'qty_fkey' AND c.convalidated AND (c.conparentid <> 0) = (c.conrelid <> 'pfk_s'::regclass)"));
    }

    [Fact]
    public async Task Orphans_in_one_partition_are_counted_and_no_partition_keeps_the_key()
    {
        await PartitionedTrees.CreateAsync(_db, "pfk_o", rows: 300);
        await _db.ExecuteAsync("CREATE TABLE pfk_o_ref (id integer PRIMARY KEY); INSERT INTO pfk_o_ref SELECT g FROM generate_series(0, 49) g; UPDATE pfk_o SET qty = 500 WHERE id IN (20, 21, 22);");
        var engine = Engines.For(_db);
        var before = await ShapeAsync("pfk_o");

        var error = await Assert.ThrowsAsync<ZdtException>(async () => await engine.RunAsync(
            await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "pfk_o", ConstraintKind.ForeignKey) { Columns = new[] { "qty" }, ReferencedTable = "pfk_o_ref" })));

        Assert.Equal("ConstraintViolated", error.ErrorId);
        Assert.Equal(3L, error.TargetObject);
        Assert.Equal(before, await ShapeAsync("pfk_o"));
        Assert.Equal(0L, await ForeignKeyTriggersAsync("pfk_o_ref", "pfk_o"));
    }

    [Fact]
    public async Task A_unique_constraint_and_a_primary_key_are_built_per_partition_and_adopted_as_the_plain_statement_gives_them()
    {
        await PartitionedTrees.CreateAsync(_db, "puq_a");
        await PartitionedTrees.CreateAsync(_db, "puq_b");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var unique = await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "puq_a", ConstraintKind.Unique) { Name = "puq_a_id_created_region_key", Columns = new[] { "id", "created", "region" } });
        var statements = unique.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Equal("CREATE UNIQUE INDEX CONCURRENTLY \"puq_a_2020_id_created_region_key\" ON \"public\".\"puq_a_2020\" (\"id\", \"created\", \"region\")", statements[0]);
        Assert.Equal("ALTER TABLE \"public\".\"puq_a_2020\" ADD CONSTRAINT \"puq_a_2020_id_created_region_key\" UNIQUE USING INDEX \"puq_a_2020_id_created_region_key\"", statements[1]);
        Assert.Equal("ALTER TABLE \"public\".\"puq_a\" ADD CONSTRAINT \"puq_a_id_created_region_key\" UNIQUE (\"id\", \"created\", \"region\")", statements[^1]);
        Assert.True(unique.Steps[^1].LocksTargetOnly);
        Assert.Equal(11, unique.Steps.Count);
        Assert.Equal(MigrationPhase.Completed, (await engine.RunAsync(unique)).Phase);

        var primary = await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "puq_a", ConstraintKind.PrimaryKey) { Name = "puq_a_pkey", Columns = new[] { "region", "created", "id" } });
        Assert.Contains("ALTER TABLE \"public\".\"puq_a_2022_eu\" ADD CONSTRAINT \"puq_a_2022_eu_pkey\" PRIMARY KEY USING INDEX \"puq_a_2022_eu_pkey\"", primary.Steps.SelectMany(s => s.Statements));
        Assert.Equal(MigrationPhase.Completed, (await engine.RunAsync(primary)).Phase);

        await _db.ExecuteAsync("ALTER TABLE puq_b ADD CONSTRAINT puq_b_id_created_region_key UNIQUE (id, created, region); ALTER TABLE puq_b ADD CONSTRAINT puq_b_pkey PRIMARY KEY (region, created, id);");
        Assert.Equal(await ShapeAsync("puq_b"), await ShapeAsync("puq_a"));
        Assert.Contains("T_2022: CREATE UNIQUE INDEX T_2022_pkey ON ONLY public.T_2022 USING btree (region, created, id) valid=true of T_pkey", await ShapeAsync("puq_a"), StringComparison.Ordinal);
        await using (var conn = await _db.OpenAsync())
        await using (var insert = new NpgsqlCommand("INSERT INTO puq_a SELECT id, created, region, qty, note FROM puq_a WHERE id = 3", conn))
        {
            Assert.Equal(PostgresErrorCodes.UniqueViolation, (await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync())).SqlState);
        }

        WriteHeldLocks(observer);
    }

    [Fact]
    public async Task Duplicates_in_one_partition_are_counted_and_every_partition_index_is_dropped_again()
    {
        await PartitionedTrees.CreateAsync(_db, "puq_d");
        await _db.ExecuteAsync("INSERT INTO puq_d SELECT id, created, region, qty, note FROM puq_d WHERE id IN (800, 802)");
        Assert.Equal(2L, await _db.ScalarAsync<long>("SELECT count(*) FROM puq_d_2022_other WHERE id IN (800, 802)") / 2);
        var engine = Engines.For(_db);
        var before = await ShapeAsync("puq_d");
        Assert.Equal(2L, await _db.ScalarAsync<long>("SELECT count(*) - count(DISTINCT (id, created, region)) FROM puq_d"));

        var error = await Assert.ThrowsAsync<ZdtException>(async () => await engine.RunAsync(
            await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "puq_d", ConstraintKind.Unique) { Columns = new[] { "id", "created", "region" } })));

        Assert.Equal("DuplicateKeys", error.ErrorId);
        Assert.Equal(before, await ShapeAsync("puq_d"));
    }

    [Fact]
    public async Task A_key_without_every_partition_key_column_is_refused_before_anything_changes()
    {
        await PartitionedTrees.CreateAsync(_db, "puq_r", rows: 50);
        var engine = Engines.For(_db);

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "puq_r", ConstraintKind.PrimaryKey) { Columns = new[] { "id", "created" } }));

        Assert.Equal("UniqueIndexNeedsPartitionKey", error.ErrorId);
        Assert.Contains("\"region\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_foreign_key_to_a_partitioned_table_is_added_not_valid_then_validated()
    {
        await PartitionedTrees.CreateAsync(_db, "pto_t", rows: 300);
        await _db.ExecuteAsync("""
            ALTER TABLE pto_t ADD PRIMARY KEY (id, created, region);
            CREATE TABLE pto_child (n serial PRIMARY KEY, tid bigint, tcreated date, tregion text);
            INSERT INTO pto_child (tid, tcreated, tregion) SELECT id, created, region FROM pto_t WHERE id % 10 = 0;
            """);
        var engine = Engines.For(_db);

        var plan = await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "pto_child", ConstraintKind.ForeignKey) { Name = "pto_child_t_fkey", Columns = new[] { "tid", "tcreated", "tregion" }, ReferencedTable = "pto_t" });
        Assert.Equal(
            new[]
            {
                "ALTER TABLE \"public\".\"pto_child\" ADD CONSTRAINT \"pto_child_t_fkey\" FOREIGN KEY (\"tid\", \"tcreated\", \"tregion\") REFERENCES \"public\".\"pto_t\" (\"id\", \"created\", \"region\") NOT VALID",
                "ALTER TABLE \"public\".\"pto_child\" VALIDATE CONSTRAINT \"pto_child_t_fkey\"",
            },
            plan.Steps.SelectMany(s => s.Statements));
        var done = await engine.RunAsync(plan);

        Assert.Equal(MigrationPhase.Completed, done.Phase);
        Assert.True(await _db.ScalarAsync<bool>("SELECT convalidated FROM pg_constraint WHERE conname = 'pto_child_t_fkey'"));
        await using var conn = await _db.OpenAsync();
        await using var delete = new NpgsqlCommand("DELETE FROM pto_t WHERE id = 10", conn);
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, (await Assert.ThrowsAsync<PostgresException>(() => delete.ExecuteNonQueryAsync())).SqlState);
    }
}
