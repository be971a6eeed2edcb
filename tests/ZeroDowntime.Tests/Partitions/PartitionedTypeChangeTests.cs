using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// New-ColumnTypeChange on a partitioned table (two levels, a default partition) through the one
/// column-copy mechanism, as the rename by copy does it: the sync trigger on the parent, the index
/// copy built partition by partition, the check copied per partition, NOT NULL by validated checks,
/// the backfill and parity leaf by leaf; the application writing through every phase; the end
/// state of the plain ALTER COLUMN TYPE on a twin, every partition's index and constraint names included.
/// </summary>
public class PartitionedTypeChangeTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public PartitionedTypeChangeTests(TestDatabase db)
    {
        _db = db;
    }

    private Task<long> CountAsync(string sql) => _db.ScalarAsync<long>(sql);

    private Task<string?> RowsAsync(string tree) => _db.ScalarAsync<string>($"SELECT md5(string_agg(format('%s|%s|%s|%s|%s', id, created, region, qty, note), ',' ORDER BY id)) FROM {tree}");

    /// <summary>The application's writes of one phase, the same on both twins (qty is written as the old type's values until the contract).</summary>
    private async Task WriteAsync(string tree, int phase)
    {
        var id = 100_000 + (phase * 10);
        await _db.ExecuteAsync($"""
            INSERT INTO {tree} (id, created, region, qty) VALUES ({id}, '2021-02-03', 'us', {phase}), ({id + 1}, '2022-02-03', 'eu', {phase + 1});
            INSERT INTO {tree} (id, created, region) VALUES ({id + 2}, '2020-02-03', 'us');
            UPDATE {tree} SET qty = qty + 1000 WHERE id % 101 = {phase};
            UPDATE {tree} SET note = 'n{phase}' WHERE id % 107 = {phase};
            INSERT INTO {tree} (id, created, region, qty) VALUES (7, '2020-01-08', 'us', {phase}) ON CONFLICT (id, created, region) DO UPDATE SET qty = excluded.qty + 1;
            DELETE FROM {tree} WHERE id % 499 = {phase};
            """);
    }

    [Fact]
    public async Task A_type_change_of_a_partitioned_table_with_a_partition_created_mid_migration_ends_as_the_plain_ALTER_COLUMN_TYPE_on_a_twin()
    {
        await PartitionedTrees.CreateWithColumnObjectsAsync(_db, "ptc_a");
        await PartitionedTrees.CreateWithColumnObjectsAsync(_db, "ptc_b");
        var engine = Engines.For(_db);

        var plan = await engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest("public", "ptc_a", "qty", "bigint"));
        var statements = plan.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Contains(statements, s => s.StartsWith("CREATE INDEX", StringComparison.Ordinal) && s.Contains(" ON ONLY \"public\".\"ptc_a\" ", StringComparison.Ordinal));
        Assert.Contains(statements, s => s.StartsWith("CREATE INDEX CONCURRENTLY", StringComparison.Ordinal) && s.Contains(" ON \"public\".\"ptc_a_2022_eu\" ", StringComparison.Ordinal));
        Assert.Equal(LockLevel.ShareRowExclusive, plan.Steps[1].Lock);
        var expanded = await engine.RunAsync(plan);
        Assert.Equal(MigrationPhase.Expanded, expanded.Phase);
        Assert.Equal(14L, await CountAsync("SELECT count(*) FROM pg_trigger g JOIN pg_partition_tree('ptc_a') t ON t.relid = g.tgrelid WHERE g.tgname LIKE '%zdt%'"));

        await WriteAsync("ptc_a", 1);
        await WriteAsync("ptc_b", 1);

        // A partition manager's nightly partition: the shadow column, the trigger and the index copy come with it.
        await _db.ExecuteAsync("CREATE TABLE ptc_a_2024 PARTITION OF ptc_a FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        await _db.ExecuteAsync("CREATE TABLE ptc_b_2024 PARTITION OF ptc_b FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        await _db.ExecuteAsync("INSERT INTO ptc_a (id, created, region, qty) VALUES (9001, '2024-05-01', 'us', 5)");
        await _db.ExecuteAsync("INSERT INTO ptc_b (id, created, region, qty) VALUES (9001, '2024-05-01', 'us', 5)");
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM ptc_a_2024 WHERE qty::bigint IS DISTINCT FROM zdt_qty_new"));

        var backfilled = await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id), new BackfillOptions { BatchSize = 200 });
        Assert.Equal(MigrationPhase.Backfilled, backfilled.Phase);
        await WriteAsync("ptc_a", 2);
        await WriteAsync("ptc_b", 2);
        var parity = await engine.TestColumnParityAsync(expanded.Id);
        Assert.Equal(0L, parity.Mismatches);
        Assert.Equal(await CountAsync("SELECT count(*) FROM ptc_a"), parity.RowsChecked);
        await WriteAsync("ptc_a", 3);
        await WriteAsync("ptc_b", 3);

        var completed = await engine.RunAsync(await engine.PlanContractAsync(expanded.Id));
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        await _db.ExecuteAsync("ALTER TABLE ptc_b ALTER COLUMN qty TYPE bigint");

        // Writes of values only the new type holds, on both.
        await _db.ExecuteAsync("UPDATE ptc_a SET qty = 5000000000 WHERE id % 97 = 4; UPDATE ptc_b SET qty = 5000000000 WHERE id % 97 = 4");

        var twin = (await PartitionedTrees.ShapeAsync(_db, "ptc_b")).Split('\n').Order(StringComparer.Ordinal);
        Assert.Equal(string.Join("\n", twin), string.Join("\n", (await PartitionedTrees.ShapeAsync(_db, "ptc_a")).Split('\n').Order(StringComparer.Ordinal)));
        Assert.Equal(await RowsAsync("ptc_b"), await RowsAsync("ptc_a"));
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pg_proc WHERE proname LIKE 'sync_%ptc_a%'"));
    }

    [Fact]
    public async Task A_type_change_of_a_partitioned_table_can_be_undone_and_a_partition_key_column_is_refused()
    {
        await PartitionedTrees.CreateWithColumnObjectsAsync(_db, "ptc_u");
        var before = await PartitionedTrees.ShapeAsync(_db, "ptc_u");
        var engine = Engines.For(_db);
        var expanded = await engine.RunAsync(await engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest("public", "ptc_u", "qty", "numeric(12,2)")));
        await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id), new BackfillOptions { BatchSize = 500, MaxBatches = 2 });
        var undone = await engine.RunAsync(await engine.PlanUndoAsync(expanded.Id));
        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        Assert.Equal(before, await PartitionedTrees.ShapeAsync(_db, "ptc_u"));

        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest("public", "ptc_u", "created", "timestamptz")));
        Assert.Equal(ErrorIds.ColumnCannotBeCopied, refused.ErrorId);
        Assert.Contains("partition key", refused.Message, StringComparison.Ordinal);
    }
}
