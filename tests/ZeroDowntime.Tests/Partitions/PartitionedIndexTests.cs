using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;
using Xunit.Abstractions;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// New-Index and Remove-Index on a partitioned table (two levels, a default partition): the parent
/// ON ONLY, each partition concurrently, attached; the end state of the plain CREATE INDEX on a
/// twin; a run stopped half way continued; unique only where the partition key allows.
/// </summary>
public class PartitionedIndexTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;
    private readonly ITestOutputHelper _output;

    public PartitionedIndexTests(TestDatabase db, ITestOutputHelper output)
    {
        _db = db;
        _output = output;
    }

    [Fact]
    public async Task An_index_is_built_partition_by_partition_and_ends_as_the_plain_create_index_on_a_twin()
    {
        await PartitionedTrees.CreateAsync(_db, "pix_a");
        await PartitionedTrees.CreateAsync(_db, "pix_b");
        await _db.ExecuteAsync("CREATE INDEX pix_b_qty ON pix_b (qty) INCLUDE (note) WHERE (qty > 3); CREATE INDEX pix_b_lower ON pix_b (lower(note))");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var plan = await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "pix_a") { Name = "pix_a_qty", Columns = new[] { "qty" }, Include = new[] { "note" }, Where = "qty > 3" });
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Contains("LOCK TABLE ONLY \"public\".\"pix_a\" IN SHARE MODE", script, StringComparison.Ordinal);
        Assert.Contains("CREATE INDEX \"pix_a_qty\" ON ONLY \"public\".\"pix_a\" (\"qty\") INCLUDE (\"note\") WHERE (qty > 3);", script, StringComparison.Ordinal);
        Assert.Contains("CREATE INDEX \"pix_a_2022_qty_note_idx\" ON ONLY \"public\".\"pix_a_2022\"", script, StringComparison.Ordinal);
        Assert.Contains("CREATE INDEX CONCURRENTLY \"pix_a_2022_eu_qty_note_idx\" ON \"public\".\"pix_a_2022_eu\"", script, StringComparison.Ordinal);
        Assert.Contains("ALTER INDEX \"public\".\"pix_a_2022_qty_note_idx\" ATTACH PARTITION \"public\".\"pix_a_2022_eu_qty_note_idx\";", script, StringComparison.Ordinal);
        Assert.Contains("ALTER INDEX \"public\".\"pix_a_qty\" ATTACH PARTITION \"public\".\"pix_a_default_qty_note_idx\";", script, StringComparison.Ordinal);
        Assert.DoesNotContain("CREATE INDEX CONCURRENTLY \"pix_a_qty\"", script, StringComparison.Ordinal);

        // A leaf's attach locks the leaf first (its wait bounded, its hold measured from the grant); a
        // sub-partitioned level's does not (LOCK TABLE would lock its whole subtree).
        var attaches = plan.Steps.Where(s => s.Statements[0].StartsWith("ALTER INDEX", StringComparison.Ordinal)).ToDictionary(s => s.Statements[0][(s.Statements[0].LastIndexOf(' ') + 1)..], s => s.LockTarget);
        Assert.Equal("\"public\".\"pix_a_2022_eu\"", attaches["\"public\".\"pix_a_2022_eu_qty_note_idx\""]);
        Assert.Equal("\"public\".\"pix_a_2022_qty_note_idx\"", attaches["\"public\".\"pix_a_2022_qty_note_idx\""]);
        Assert.Contains("LOCK TABLE \"public\".\"pix_a_2022_eu\" IN ACCESS EXCLUSIVE MODE", script, StringComparison.Ordinal);

        var created = await engine.RunAsync(plan);
        var expression = await engine.ApplyAsync(engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "pix_a") { Name = "pix_a_lower", Expressions = new[] { "lower(note)" } }));

        Assert.Equal(MigrationPhase.Completed, created.Phase);
        Assert.Equal(MigrationPhase.Completed, expression.Phase);
        Assert.Equal(await PartitionedTrees.IndexesAsync(_db, "pix_b"), await PartitionedTrees.IndexesAsync(_db, "pix_a"));
        Assert.DoesNotContain("valid=false", await PartitionedTrees.IndexesAsync(_db, "pix_a"), StringComparison.Ordinal);

        // What each step held: ON ONLY and ATTACH are catalog changes of milliseconds.
        foreach (var held in observer.VerboseMessages.Where(m => m.Contains("held locks for", StringComparison.Ordinal)))
        {
            _output.WriteLine(held);
        }
    }

    [Fact]
    public async Task A_build_stopped_half_way_is_continued_by_running_the_command_again()
    {
        await PartitionedTrees.CreateAsync(_db, "pix_r");
        var engine = Engines.For(_db);
        var request = new CreateIndexRequest("public", "pix_r") { Name = "pix_r_region", Columns = new[] { "region" } };
        var plan = await engine.PlanCreateIndexAsync(request);
        // The parent; 2020 and 2021 built and attached; 2022 ON ONLY and attached; default; then 2022's eu and other.
        Assert.Equal(13, plan.Steps.Count);

        // A killed run: the parent, 2020 built and attached, 2021 built but not attached, 2022's ON
        // ONLY not attached, and 2022_eu's concurrent build died leaving an INVALID index.
        foreach (var step in plan.Steps.Take(4).Append(plan.Steps[5]))
        {
            foreach (var statement in step.Statements)
            {
                await _db.ExecuteAsync(statement);
            }
        }

        await _db.ExecuteAsync("CREATE INDEX CONCURRENTLY pix_r_2022_eu_region_idx ON pix_r_2022_eu (region)");
        await _db.ExecuteAsync("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'pix_r_2022_eu_region_idx'::regclass");

        var again = await engine.PlanCreateIndexAsync(request);
        var script = again.ToScript(engine.Options.LockTimeout);
        Assert.DoesNotContain("ON ONLY \"public\".\"pix_r\" ", script, StringComparison.Ordinal);
        Assert.DoesNotContain("ON \"public\".\"pix_r_2020\"", script, StringComparison.Ordinal);
        Assert.DoesNotContain("ON \"public\".\"pix_r_2021\"", script, StringComparison.Ordinal);
        Assert.Contains("ALTER INDEX \"public\".\"pix_r_region\" ATTACH PARTITION \"public\".\"pix_r_2021_region_idx\";", script, StringComparison.Ordinal);
        Assert.Contains("ALTER INDEX \"public\".\"pix_r_region\" ATTACH PARTITION \"public\".\"pix_r_2022_region_idx\";", script, StringComparison.Ordinal);
        Assert.Contains("DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"pix_r_2022_eu_region_idx\";\nCREATE INDEX CONCURRENTLY \"pix_r_2022_eu_region_idx\"", script, StringComparison.Ordinal);
        Assert.Contains("Continue building", again.Summary, StringComparison.Ordinal);

        var done = await engine.RunAsync(again);

        Assert.Equal(MigrationPhase.Completed, done.Phase);
        var indexes = await PartitionedTrees.IndexesAsync(_db, "pix_r");
        Assert.DoesNotContain("valid=false", indexes, StringComparison.Ordinal);
        Assert.Equal(7, indexes.Split('\n').Length); // one per relation of the tree, no duplicate
        Assert.Contains("T_2022_eu: CREATE INDEX T_2022_eu_region_idx ON public.T_2022_eu USING btree (region) valid=true of T_2022_region_idx", indexes, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_unique_index_must_cover_the_partition_key_of_every_level()
    {
        await PartitionedTrees.CreateAsync(_db, "pix_u");
        var engine = Engines.For(_db);

        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "pix_u") { Columns = new[] { "id", "created" }, Unique = true }));
        Assert.Equal(ErrorIds.UniqueIndexNeedsPartitionKey, refused.ErrorId);
        Assert.Contains("\"public\".\"pix_u_2022\"", refused.Message, StringComparison.Ordinal);
        Assert.Contains("lack \"region\"", refused.Message, StringComparison.Ordinal);
        var onlyInclude = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "pix_u") { Columns = new[] { "id" }, Include = new[] { "created", "region" }, Unique = true }));
        Assert.Equal(ErrorIds.UniqueIndexNeedsPartitionKey, onlyInclude.ErrorId);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_index i JOIN pg_partition_tree('pix_u') t ON t.relid = i.indrelid"));

        var unique = await engine.ApplyAsync(engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "pix_u") { Name = "pix_u_key", Columns = new[] { "id", "created", "region" }, Unique = true }));

        Assert.Equal(MigrationPhase.Completed, unique.Phase);
        Assert.True(await _db.ScalarAsync<bool>("SELECT indisvalid AND indisunique FROM pg_index WHERE indexrelid = 'pix_u_key'::regclass"));
        var duplicate = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => _db.ExecuteAsync("INSERT INTO pix_u SELECT id, created, region FROM pix_u WHERE id = 7"));
        Assert.Equal("23505", duplicate.SqlState);
    }

    [Fact]
    public async Task A_duplicate_in_one_partition_fails_the_unique_build_and_leaves_nothing_behind()
    {
        await PartitionedTrees.CreateAsync(_db, "pix_d");
        await _db.ExecuteAsync("INSERT INTO pix_d SELECT id, created, region FROM pix_d WHERE id = 5");
        var engine = Engines.For(_db);

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.ApplyAsync(engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "pix_d") { Name = "pix_d_key", Columns = new[] { "id", "created", "region" }, Unique = true })));

        Assert.Equal("DuplicateKeys", error.ErrorId);
        Assert.Equal("", await PartitionedTrees.IndexesAsync(_db, "pix_d"));
    }

    [Fact]
    public async Task Remove_index_drops_a_partitioned_index_with_its_partitions_indexes_and_refuses_a_partitions_index()
    {
        await PartitionedTrees.CreateAsync(_db, "pix_x");
        await _db.ExecuteAsync("CREATE INDEX pix_x_qty ON pix_x (qty)");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var inUse = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanDropIndexAsync(new DropIndexRequest("public", "pix_x_2020_qty_idx")));
        Assert.Equal("IndexInUse", inUse.ErrorId);
        Assert.Contains("partition of the index pix_x_qty", inUse.Message, StringComparison.Ordinal);

        var plan = await engine.PlanDropIndexAsync(new DropIndexRequest("public", "pix_x_qty"));
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Contains("LOCK TABLE \"public\".\"pix_x\" IN ACCESS EXCLUSIVE MODE", script, StringComparison.Ordinal);
        Assert.Contains("DROP INDEX IF EXISTS \"public\".\"pix_x_qty\";", script, StringComparison.Ordinal);
        var dropped = await engine.RunAsync(plan);

        Assert.Equal(MigrationPhase.Completed, dropped.Phase);
        Assert.Equal("CREATE INDEX pix_x_qty ON ONLY public.pix_x USING btree (qty)", dropped.Details["Definition"]);
        Assert.Equal("", await PartitionedTrees.IndexesAsync(_db, "pix_x"));
        _output.WriteLine(observer.VerboseMessages.Last(m => m.Contains("held locks for", StringComparison.Ordinal)));
    }
}
