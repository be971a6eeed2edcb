using System.Text.Json;
using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// The backfill and the parity check of a partitioned table walk it leaf partition by leaf
/// partition, each by its own key and checkpoint: Add-Column with a volatile default on a tree of
/// two levels with a default partition, stopped in the middle of a partition and resumed, with a
/// partition attached while it was stopped; the end state of the plain ADD COLUMN on a twin.
/// </summary>
public class PartitionedBackfillTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public PartitionedBackfillTests(TestDatabase db)
    {
        _db = db;
    }

    private Task<long> CountAsync(string sql) => _db.ScalarAsync<long>(sql);

    /// <summary>Columns, defaults, NOT NULL, constraints and triggers of every relation of the tree, with the tree's name replaced by "T".</summary>
    private Task<string?> ShapeAsync(string tree) => _db.ScalarAsync<string>($"""
        SELECT string_agg(replace(x, '{tree}', 'T'), E'\n' ORDER BY x) FROM (
            SELECT replace(t.relid::regclass::text, '{tree}', 'T') || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                   || ' notnull=' || a.attnotnull || COALESCE(' default ' || pg_get_expr(d.adbin, d.adrelid), '') AS x
            FROM pg_partition_tree('{tree}') t JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            UNION ALL
            SELECT replace(c.conrelid::regclass::text, '{tree}', 'T') || ' constraint ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
            FROM pg_partition_tree('{tree}') t JOIN pg_constraint c ON c.conrelid = t.relid
            UNION ALL
            SELECT replace(g.tgrelid::regclass::text, '{tree}', 'T') || ' trigger ' || g.tgname
            FROM pg_partition_tree('{tree}') t JOIN pg_trigger g ON g.tgrelid = t.relid AND NOT g.tgisinternal) s
        """);

    [Fact]
    public async Task A_volatile_default_is_backfilled_per_partition_resumes_inside_the_partition_it_stopped_in_and_walks_a_partition_attached_meanwhile()
    {
        await PartitionedTrees.CreateAsync(_db, "pbf_a");
        await PartitionedTrees.CreateAsync(_db, "pbf_b");
        await _db.ExecuteAsync("ALTER TABLE pbf_a ADD PRIMARY KEY (id, created, region); ALTER TABLE pbf_b ADD PRIMARY KEY (id, created, region)");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var expanded = await engine.ApplyAsync(engine.PlanAddColumnAsync(new AddColumnRequest("public", "pbf_a", "token", "uuid", "gen_random_uuid()", NotNull: true)));
        Assert.Equal("Backfill", expanded.Strategy);

        // The marker's triggers are on the parent, and PostgreSQL cloned them to every partition.
        Assert.Equal(7L * 2, await CountAsync("SELECT count(*) FROM pg_trigger g JOIN pg_partition_tree('pbf_a') t ON t.relid = g.tgrelid WHERE g.tgname LIKE 'zdt_%'"));
        Assert.Equal(2000L, await CountAsync("SELECT count(*) FROM pbf_a WHERE token IS NULL"));

        // The plan walks each leaf partition (level by level, by name) by its own key.
        var plan = await engine.PlanBackfillAsync(expanded.Id, vacuumAfter: false);
        Assert.Equal(
            new[] { "pbf_a_2020", "pbf_a_2021", "pbf_a_default", "pbf_a_2022_eu", "pbf_a_2022_other" }.Select(p => $"\"public\".\"{p}\"").ToArray(),
            plan.Steps.Select(s => s.LockTarget).ToArray());
        Assert.All(plan.Steps, s => Assert.Contains("by (\"id\", \"created\", \"region\")", s.Title, StringComparison.Ordinal));

        // Batches of 100: pbf_a_2020 takes n / 100 + 1 of them (the last one finds fewer than 100 rows); then 2 more in pbf_a_2021.
        var first = await CountAsync("SELECT count(*) FROM pbf_a_2020");
        var stopped = await engine.RunBackfillAsync(plan, new BackfillOptions { BatchSize = 100, MaxBatches = (int)(first / 100) + 1 + 2 });
        Assert.Equal(MigrationPhase.Backfilling, stopped.Phase);
        using (var checkpoint = JsonDocument.Parse((await _db.ScalarAsync<string>($"SELECT backfill_checkpoint::text FROM zdt.migration WHERE id = {expanded.Id}"))!))
        {
            Assert.Equal(await CountAsync("SELECT 'pbf_a_2021'::regclass::oid::bigint"), checkpoint.RootElement.GetProperty("table").GetInt64());
            Assert.Equal(await CountAsync("SELECT 'pbf_a_2020'::regclass::oid::bigint"), Assert.Single(checkpoint.RootElement.GetProperty("done").EnumerateArray()).GetInt64());
        }

        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pbf_a_2020 WHERE token IS NULL"));
        Assert.Equal(200L, await CountAsync("SELECT count(*) FROM pbf_a_2021 WHERE token IS NOT NULL"));
        Assert.Equal(2000L - first - 200, await CountAsync("SELECT count(*) FROM pbf_a WHERE token IS NULL"));
        Assert.Contains(observer.ProgressUpdates, p => p.Activity.StartsWith("Backfill \"public\".\"pbf_a_2021\"", StringComparison.Ordinal));

        // While it is stopped: the application writes, a partition manager creates one partition
        // and attaches a table it loaded (rows with the new column and its marker NULL: pending).
        // The attached one sorts before the partition the backfill stopped in.
        await _db.ExecuteAsync("""
            UPDATE pbf_a SET qty = -1 WHERE id % 97 = 0;
            INSERT INTO pbf_a (id, created, region, qty) VALUES (5001, '2021-06-01', 'us', 1), (5002, '2022-06-01', 'eu', 2);
            CREATE TABLE pbf_a_2024 PARTITION OF pbf_a FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            CREATE TABLE pbf_a_1999 (LIKE pbf_a);
            INSERT INTO pbf_a_1999 (id, created, region, qty) SELECT g, date '1999-01-01' + (g - 6001), 'us', 7 FROM generate_series(6001, 6050) g;
            ALTER TABLE pbf_a_1999 ADD PRIMARY KEY (id, created, region);
            """);
        await _db.ExecuteAsync("ALTER TABLE pbf_a_default ADD CONSTRAINT pbf_a_default_not_1999 CHECK (created >= '2000-01-01'); ALTER TABLE pbf_a ATTACH PARTITION pbf_a_1999 FOR VALUES FROM ('1999-01-01') TO ('2000-01-01')");
        Assert.Equal(50L, await CountAsync("SELECT count(*) FROM pbf_a_1999 WHERE token IS NULL AND zdt_filled_token IS NULL"));
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pbf_a WHERE id % 97 = 0 AND id <= 2000 AND token IS NULL"));

        var resumed = await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id, vacuumAfter: false), new BackfillOptions { BatchSize = 100 });
        Assert.Equal(MigrationPhase.Backfilled, resumed.Phase);
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pbf_a WHERE token IS NULL"));
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pbf_a WHERE zdt_filled_token IS NULL"));
        Assert.Equal(2052L, await CountAsync("SELECT count(DISTINCT token) FROM pbf_a"));
        Assert.Contains(observer.VerboseMessages, m => m.Contains("Resuming the backfill", StringComparison.Ordinal) && m.Contains("\"pbf_a_2021\"", StringComparison.Ordinal));

        // Parity counts the leaves' rows (the parent has none of its own).
        var parity = await engine.TestColumnParityAsync(expanded.Id);
        Assert.Equal(0L, parity.Mismatches);
        Assert.Equal(2052L, parity.RowsChecked);
        Assert.Contains(observer.ProgressUpdates, p => p.Activity.StartsWith("Parity \"public\".\"pbf_a_1999\"", StringComparison.Ordinal));

        var completed = await engine.RunAsync(await engine.PlanContractAsync(expanded.Id));
        Assert.Equal(MigrationPhase.Completed, completed.Phase);

        // The twin gets the plain statement (which rewrites every partition under ACCESS EXCLUSIVE),
        // and the same partition changes.
        await _db.ExecuteAsync("""
            ALTER TABLE pbf_b ADD COLUMN token uuid DEFAULT gen_random_uuid() NOT NULL;
            CREATE TABLE pbf_b_2024 PARTITION OF pbf_b FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            CREATE TABLE pbf_b_1999 (LIKE pbf_b);
            ALTER TABLE pbf_b_1999 ADD PRIMARY KEY (id, created, region);
            ALTER TABLE pbf_b_default ADD CONSTRAINT pbf_b_default_not_1999 CHECK (created >= '2000-01-01');
            ALTER TABLE pbf_b ATTACH PARTITION pbf_b_1999 FOR VALUES FROM ('1999-01-01') TO ('2000-01-01');
            """);
        Assert.Equal(await ShapeAsync("pbf_b"), await ShapeAsync("pbf_a"));
    }

    [Fact]
    public async Task The_next_partition_starts_at_the_batch_size_the_last_one_adapted_to()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE pbs (id bigint NOT NULL, created date NOT NULL, PRIMARY KEY (id, created)) PARTITION BY RANGE (created);
            CREATE TABLE pbs_2020 PARTITION OF pbs FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
            CREATE TABLE pbs_2021 PARTITION OF pbs FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
            INSERT INTO pbs SELECT g, CASE WHEN g <= 7000 THEN date '2020-06-01' ELSE date '2021-06-01' END FROM generate_series(1, 14000) g;
            ANALYZE pbs;
            """);
        var engine = Engines.For(_db);
        var expanded = await engine.ApplyAsync(engine.PlanAddColumnAsync(new AddColumnRequest("public", "pbs", "drawn", "double precision", "random()", NotNull: false)));

        // A target no batch reaches: every batch doubles its size. The first partition takes 1,000,
        // 2,000 and 4,000 rows and ends at 8,000; the second, starting there, needs one batch (from
        // 1,000 again it would need three, past -MaxBatches).
        var pace = new BackfillOptions { Adaptive = false, TargetBatchTime = TimeSpan.FromSeconds(30), MaxBatches = 5 };
        var done = await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id, vacuumAfter: false), pace);
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.Equal(14000L, done.RowsBackfilled);
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pbs WHERE drawn IS NULL"));
    }

    [Fact]
    public async Task The_expand_holds_ACCESS_EXCLUSIVE_only_for_the_columns_and_writes_before_the_marker_triggers_keep_their_values_or_are_filled()
    {
        await PartitionedTrees.CreateAsync(_db, "pbf_w", rows: 600);
        await _db.ExecuteAsync("ALTER TABLE pbf_w ADD PRIMARY KEY (id, created, region)");
        var windowWrites = 0;
        var observer = new RecordingObserver
        {
            // Runs on the engine's thread after the columns' transaction committed and before the
            // triggers' began: the old version's writes there meet no marker trigger.
            OnVerbose = message =>
            {
                if (message.Contains("expand step 2/", StringComparison.Ordinal) && message.Contains("Install the marker's triggers", StringComparison.Ordinal))
                {
                    _db.ExecuteAsync("""
                        INSERT INTO pbf_w (id, created, region, qty) VALUES (7001, '2020-03-04', 'us', 7), (7002, '2022-03-04', 'eu', 8);
                        UPDATE pbf_w SET qty = qty + 500 WHERE id IN (10, 11);
                        """).GetAwaiter().GetResult();
                    windowWrites++;
                }
            },
        };
        var engine = Engines.For(_db, observer);

        var plan = await engine.PlanAddColumnAsync(new AddColumnRequest("public", "pbf_w", "drawn", "double precision", "random()", NotNull: false));
        Assert.Equal(2, plan.Steps.Count);
        Assert.Equal(LockLevel.AccessExclusive, plan.Steps[0].Lock);
        Assert.DoesNotContain(plan.Steps[0].Statements, s => s.StartsWith("CREATE TRIGGER", StringComparison.Ordinal) || s.StartsWith("CREATE FUNCTION", StringComparison.Ordinal));
        Assert.Equal(LockLevel.ShareRowExclusive, plan.Steps[1].Lock);
        Assert.Equal(2, plan.Steps[1].Statements.Count(s => s.StartsWith("CREATE TRIGGER", StringComparison.Ordinal)));

        var expanded = await engine.RunAsync(plan);
        Assert.Equal(1, windowWrites);

        // The inserts took the default and are marked filled; the updated rows are still pending.
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pbf_w WHERE id IN (7001, 7002) AND (drawn IS NULL OR zdt_filled_drawn IS NOT true)"));
        Assert.Equal(2L, await CountAsync("SELECT count(*) FROM pbf_w WHERE id IN (10, 11) AND drawn IS NULL AND zdt_filled_drawn IS NULL"));
        var inserted = await _db.ScalarAsync<string>("SELECT string_agg(drawn::text, ',' ORDER BY id) FROM pbf_w WHERE id IN (7001, 7002)");

        await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id, vacuumAfter: false), new BackfillOptions { BatchSize = 100 });
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pbf_w WHERE drawn IS NULL"));
        Assert.Equal(inserted, await _db.ScalarAsync<string>("SELECT string_agg(drawn::text, ',' ORDER BY id) FROM pbf_w WHERE id IN (7001, 7002)"));
        Assert.Equal(MigrationPhase.Completed, (await engine.RunAsync(await engine.PlanContractAsync(expanded.Id))).Phase);
    }

    [Fact]
    public async Task Parity_of_a_partitioned_table_counts_the_rows_of_every_leaf_and_names_what_is_pending()
    {
        await PartitionedTrees.CreateAsync(_db, "pbf_p", rows: 600);
        await _db.ExecuteAsync("ALTER TABLE pbf_p ADD PRIMARY KEY (id, created, region)");
        var engine = Engines.For(_db);
        var expanded = await engine.ApplyAsync(engine.PlanAddColumnAsync(new AddColumnRequest("public", "pbf_p", "drawn", "double precision", "random()", NotNull: false)));

        var before = await engine.TestColumnParityAsync(expanded.Id);
        Assert.Equal(600L, before.RowsChecked);
        Assert.Equal(600L, before.Mismatches);

        await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id, vacuumAfter: false), new BackfillOptions { BatchSize = 50 });
        await _db.ExecuteAsync("SET session_replication_role = replica; UPDATE pbf_p SET zdt_filled_drawn = NULL WHERE id IN (3, 4); SET session_replication_role = origin");
        var after = await engine.TestColumnParityAsync(expanded.Id);
        Assert.Equal(2L, after.Mismatches);

        var contract = await engine.PlanContractAsync(expanded.Id);
        var refused = await Assert.ThrowsAsync<Engine.Errors.ZdtException>(() => engine.RunAsync(contract));
        Assert.Equal("RowsPending", refused.ErrorId);
        Assert.Equal(2L, refused.TargetObject);

        var undone = await engine.UndoAsync(expanded.Id);
        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pg_attribute a JOIN pg_partition_tree('pbf_p') t ON t.relid = a.attrelid WHERE a.attname LIKE '%drawn%' AND NOT a.attisdropped"));
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pg_trigger g JOIN pg_partition_tree('pbf_p') t ON t.relid = g.tgrelid WHERE g.tgname LIKE 'zdt_%'"));
    }
}
