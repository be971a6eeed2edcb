using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>New-Index and Remove-Index: CONCURRENTLY, validity checked, INVALID leftovers dropped.</summary>
public class IndexTests : IClassFixture<TestDatabase>
{
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(1);

    private readonly TestDatabase _db;

    public IndexTests(TestDatabase db)
    {
        _db = db;
    }

    private Task<string?> IndexDefAsync(string index) => _db.ScalarAsync<string>($"SELECT pg_get_indexdef('{index}'::regclass) || ' valid=' || indisvalid FROM pg_index WHERE indexrelid = '{index}'::regclass");

    private Task<long> InvalidIndexesAsync() => _db.ScalarAsync<long>("SELECT count(*) FROM pg_index WHERE NOT indisvalid");

    [Fact]
    public async Task A_partial_expression_index_with_include_is_built_concurrently_under_load_and_matches_the_plain_one()
    {
        await Tables.CreateOrdersAsync(_db, "orders_i1");
        await Tables.CreateOrdersAsync(_db, "orders_i1p");
        var engine = Engines.For(_db);

        // A plain CREATE INDEX needs SHARE, which waits for the open writing transaction; the
        // application's writes then queue behind it.
        var naive = await Tables.NaiveStallAsync(_db, "orders_i1p", "CREATE INDEX orders_i1p_idx ON orders_i1p (customer_id, (lower(email))) INCLUDE (qty) WHERE (note IS NULL)", "ROW EXCLUSIVE", Hold);
        Assert.True(naive > Bound, $"the naive statement stalled the application only {naive.TotalMilliseconds:0} ms");

        var request = new CreateIndexRequest("public", "orders_i1")
        {
            Name = "orders_i1_idx",
            Columns = new[] { "customer_id" },
            Expressions = new[] { "lower(email)" },
            Include = new[] { "qty" },
            Where = "note IS NULL",
        };
        var plan = await engine.PlanCreateIndexAsync(request);
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Equal(PhaseAction.Apply, plan.Action);
        Assert.Contains("CREATE INDEX CONCURRENTLY \"orders_i1_idx\" ON \"public\".\"orders_i1\" (\"customer_id\", (lower(email))) INCLUDE (\"qty\") WHERE (note IS NULL);", script, StringComparison.Ordinal);
        Assert.DoesNotContain("BEGIN;", script, StringComparison.Ordinal);
        Assert.Contains("-- on failure: DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"orders_i1_idx\"", script, StringComparison.Ordinal);

        // The concurrent build waits for the writing transaction too, but nobody waits for it.
        var (migration, longest, statements) = await Tables.UnderLoadAsync(_db, "orders_i1", "ROW EXCLUSIVE", Hold, () => engine.RunAsync(plan));

        Assert.True(longest < Bound, $"an application statement waited {longest.TotalMilliseconds:0} ms");
        Assert.True(statements > 50, $"only {statements} application statements ran");
        Assert.Equal("CreateIndex", migration.Operation);
        Assert.Equal(MigrationPhase.Completed, migration.Phase);
        Assert.False(migration.IsActive);
        Assert.Equal(
            (await IndexDefAsync("orders_i1p_idx"))!.Replace("orders_i1p", "orders_i1", StringComparison.Ordinal),
            await IndexDefAsync("orders_i1_idx"));
        Assert.EndsWith("valid=true", await IndexDefAsync("orders_i1_idx"), StringComparison.Ordinal);
        var events = (await engine.GetMigrationAsync(migration.Id)).Events;
        Assert.Contains(events, e => e.ToPhase == "completed" && e.Sql!.Contains("CREATE INDEX CONCURRENTLY", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_unique_index_over_duplicates_fails_with_the_count_and_leaves_nothing_behind()
    {
        await Tables.CreateOrdersAsync(_db, "orders_i2", rows: 500);
        await _db.ExecuteAsync("""
            UPDATE orders_i2 SET email = 'dup-a@example.com' WHERE id IN (1, 2);
            UPDATE orders_i2 SET email = 'dup-b@example.com' WHERE id IN (3, 4, 5);
            UPDATE orders_i2 SET email = NULL WHERE id IN (6, 7);
            """);
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        var plan = await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "orders_i2") { Columns = new[] { "email" }, Unique = true });
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RunAsync(plan));

        Assert.Equal("DuplicateKeys", error.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, error.Kind);
        Assert.Contains("2 value(s) of (\"email\") occur more than once in \"public\".\"orders_i2\" (5 rows)", error.Message, StringComparison.Ordinal);
        Assert.Contains("(for example (\"email\") = (dup-b@example.com), in 3 rows)", error.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await InvalidIndexesAsync());
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
        var recorded = Assert.Single(await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_i2" }));
        Assert.Equal(MigrationPhase.Failed, recorded.Phase);
        Assert.Contains("2 value(s)", recorded.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_method_is_the_users_choice_and_the_default_name_follows_postgres()
    {
        await Tables.CreateOrdersAsync(_db, "orders_i3", rows: 100);
        var engine = Engines.For(_db);

        var hash = await engine.ApplyAsync(engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "orders_i3") { Columns = new[] { "email" }, Method = "HASH" }));
        var unique = await engine.ApplyAsync(engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "orders_i3") { Columns = new[] { "customer_id", "id" }, Unique = true }));

        Assert.Equal("\"public\".\"orders_i3_email_idx\"", hash.Details["Index"]);
        Assert.Equal("CREATE INDEX orders_i3_email_idx ON public.orders_i3 USING hash (email) valid=true", await IndexDefAsync("orders_i3_email_idx"));
        Assert.Equal("CREATE UNIQUE INDEX orders_i3_customer_id_id_key ON public.orders_i3 USING btree (customer_id, id) valid=true", await IndexDefAsync("orders_i3_customer_id_id_key"));
        Assert.Equal(MigrationPhase.Completed, unique.Phase);
    }

    [Fact]
    public async Task Remove_index_drops_concurrently_keeps_the_definition_and_refuses_what_it_must_not_drop()
    {
        await Tables.CreateOrdersAsync(_db, "orders_i4", rows: 100);
        await _db.ExecuteAsync("CREATE INDEX orders_i4_note ON orders_i4 (note)");
        var engine = Engines.For(_db);

        var plan = await engine.PlanDropIndexAsync(new DropIndexRequest("public", "orders_i4_note"));
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Contains("SET lock_timeout = '30000ms';\nDROP INDEX CONCURRENTLY \"public\".\"orders_i4_note\";", script, StringComparison.Ordinal);
        Assert.DoesNotContain("BEGIN;", script, StringComparison.Ordinal);

        var (dropped, longest, _) = await Tables.UnderLoadAsync(_db, "orders_i4", "ROW EXCLUSIVE", Hold, () => engine.RunAsync(plan), rows: 100);

        Assert.True(longest < Bound, $"an application statement waited {longest.TotalMilliseconds:0} ms");
        Assert.Equal("DropIndex", dropped.Operation);
        Assert.Equal(MigrationPhase.Completed, dropped.Phase);
        Assert.Equal("CREATE INDEX orders_i4_note ON public.orders_i4 USING btree (note)", dropped.Details["Definition"]);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'orders_i4_note'"));

        var inUse = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanDropIndexAsync(new DropIndexRequest("public", "orders_i4_pkey")));
        Assert.Equal("IndexInUse", inUse.ErrorId);
        Assert.Contains("constraint \"orders_i4_pkey\"", inUse.Message, StringComparison.Ordinal);
        Assert.Equal("IndexNotFound", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanDropIndexAsync(new DropIndexRequest("public", "orders_i4_note")))).ErrorId);
        Assert.Equal("IndexNotFound", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanDropIndexAsync(new DropIndexRequest("public", "orders_i4")))).ErrorId);
    }

    [Fact]
    public async Task Bad_index_definitions_are_refused_before_anything_runs()
    {
        await Tables.CreateOrdersAsync(_db, "orders_i5", rows: 10);
        await _db.ExecuteAsync("CREATE TABLE parted_i5 (id int, at date) PARTITION BY RANGE (at); CREATE TABLE parted_i5_2024 PARTITION OF parted_i5 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        async Task<ZdtException> Fails(CreateIndexRequest request) => await Assert.ThrowsAsync<ZdtException>(() => engine.PlanCreateIndexAsync(request));
        var table = new CreateIndexRequest("public", "orders_i5");

        Assert.Equal("NoIndexKey", (await Fails(table)).ErrorId);
        Assert.Equal("ColumnNotFound", (await Fails(table with { Columns = new[] { "Email" } })).ErrorId);
        Assert.Equal("ColumnNotFound", (await Fails(table with { Columns = new[] { "email" }, Include = new[] { "nope" } })).ErrorId);
        var badExpression = await Fails(table with { Expressions = new[] { "lower(nope)" } });
        Assert.Equal("InvalidSql", badExpression.ErrorId);
        Assert.Contains("column \"nope\" does not exist", badExpression.Message, StringComparison.Ordinal);
        Assert.Contains("IMMUTABLE", (await Fails(table with { Columns = new[] { "email" }, Where = "now() > '2020-01-01'" })).Message, StringComparison.Ordinal);
        Assert.Contains("access method \"nosuch\" does not exist", (await Fails(table with { Columns = new[] { "email" }, Method = "nosuch" })).Message, StringComparison.Ordinal);
        Assert.Equal("NameTaken", (await Fails(table with { Columns = new[] { "email" }, Name = "orders_i5_pkey" })).ErrorId);
        // A partitioned table is indexed partition by partition (PartitionedIndexTests); one partition alone is refused.
        var partition = await Fails(new CreateIndexRequest("public", "parted_i5_2024") { Columns = new[] { "id" } });
        Assert.Equal("NotATable", partition.ErrorId);
        Assert.Contains("is a partition", partition.Message, StringComparison.Ordinal);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
    }
}
