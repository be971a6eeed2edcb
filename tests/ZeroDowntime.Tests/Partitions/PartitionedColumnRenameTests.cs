using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// New-ColumnRename by copy on a partitioned table (two levels, a default partition) through the
/// one column-copy mechanism: the sync trigger on the parent (cloned to every partition, also one
/// created mid-migration), the index copy built partition by partition, the check copied per
/// partition at contract, NOT NULL by validated checks; writes through both names in every phase;
/// the end state of the plain RENAME COLUMN on a twin. The contract re-checks every partition.
/// </summary>
public class PartitionedColumnRenameTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public PartitionedColumnRenameTests(TestDatabase db)
    {
        _db = db;
    }

    private Task<long> CountAsync(string sql) => _db.ScalarAsync<long>(sql);

    private Task CreateAsync(string tree) => PartitionedTrees.CreateWithColumnObjectsAsync(_db, tree);

    private Task<string> ShapeAsync(string tree) => PartitionedTrees.ShapeAsync(_db, tree);

    private Task<string?> RowsAsync(string tree) => _db.ScalarAsync<string>($"SELECT md5(string_agg(format('%s|%s|%s|%s|%s', id, created, region, amount, note), ',' ORDER BY id)) FROM {tree}");

    /// <summary>The old version writes the old name, the new version the new name; the twin, with one column, gets the same writes through it.</summary>
    private async Task WriteAsync(string tree, string oldName, string newName, int phase)
    {
        var id = 100_000 + (phase * 10);
        await _db.ExecuteAsync($"""
            INSERT INTO {tree} (id, created, region, {oldName}) VALUES ({id}, '2021-02-03', 'us', {phase});
            INSERT INTO {tree} (id, created, region, {newName}) VALUES ({id + 1}, '2022-02-03', 'eu', {phase + 1});
            INSERT INTO {tree} (id, created, region) VALUES ({id + 2}, '2020-02-03', 'us');
            UPDATE {tree} SET {oldName} = {oldName} + 1000 WHERE id % 101 = {phase};
            UPDATE {tree} SET {newName} = {phase} WHERE id % 103 = {phase};
            UPDATE {tree} SET note = 'n{phase}' WHERE id % 107 = {phase};
            DELETE FROM {tree} WHERE id % 499 = {phase};
            """);
    }

    [Fact]
    public async Task A_copy_rename_of_a_partitioned_table_with_a_partition_created_mid_migration_ends_as_the_plain_rename_on_a_twin()
    {
        await CreateAsync("pcr_a");
        await CreateAsync("pcr_b");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var plan = await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "pcr_a", "qty", "amount"));
        var statements = plan.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Contains("CREATE INDEX \"pcr_a_amount_idx\" ON ONLY \"public\".\"pcr_a\" USING btree (\"amount\")", statements);
        Assert.Contains("CREATE INDEX CONCURRENTLY \"pcr_a_2022_eu_amount_idx\" ON \"public\".\"pcr_a_2022_eu\" USING btree (\"amount\")", statements);
        Assert.DoesNotContain(statements, s => s.Contains("NOT VALID", StringComparison.Ordinal));
        var expanded = await engine.RunAsync(plan);
        Assert.Equal(MigrationPhase.Expanded, expanded.Phase);

        // The sync triggers, on the parent, were cloned to every partition (7 relations, 2 triggers).
        Assert.Equal(14L, await CountAsync("SELECT count(*) FROM pg_trigger g JOIN pg_partition_tree('pcr_a') t ON t.relid = g.tgrelid WHERE g.tgname LIKE '%zdt%'"));
        Assert.True(await _db.ScalarAsync<bool>("SELECT indisvalid FROM pg_index WHERE indexrelid = 'pcr_a_amount_idx'::regclass"));

        await WriteAsync("pcr_a", "qty", "amount", 1);
        await WriteAsync("pcr_b", "qty", "qty", 1);

        // A partition manager's nightly partition, between expand and contract: it gets the new
        // column (inherited), the triggers (cloned) and the index copy (PostgreSQL builds and attaches it).
        await _db.ExecuteAsync("CREATE TABLE pcr_a_2024 PARTITION OF pcr_a FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        await _db.ExecuteAsync("CREATE TABLE pcr_b_2024 PARTITION OF pcr_b FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        Assert.Equal(2L, await CountAsync("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pcr_a_2024'::regclass AND tgname LIKE '%zdt%'"));
        await _db.ExecuteAsync("INSERT INTO pcr_a (id, created, region, qty) VALUES (9001, '2024-05-01', 'us', 5); INSERT INTO pcr_a (id, created, region, amount) VALUES (9002, '2024-05-02', 'us', 6)");
        await _db.ExecuteAsync("INSERT INTO pcr_b (id, created, region, qty) VALUES (9001, '2024-05-01', 'us', 5); INSERT INTO pcr_b (id, created, region, qty) VALUES (9002, '2024-05-02', 'us', 6)");
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pcr_a_2024 WHERE qty IS DISTINCT FROM amount"));

        var backfilled = await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id), new BackfillOptions { BatchSize = 200 });
        Assert.Equal(MigrationPhase.Backfilled, backfilled.Phase);
        await WriteAsync("pcr_a", "qty", "amount", 2);
        await WriteAsync("pcr_b", "qty", "qty", 2);
        var parity = await engine.TestColumnParityAsync(expanded.Id);
        Assert.Equal(0L, parity.Mismatches);
        Assert.Equal(await CountAsync("SELECT count(*) FROM pcr_a"), parity.RowsChecked);
        await WriteAsync("pcr_a", "qty", "amount", 3);
        await WriteAsync("pcr_b", "qty", "qty", 3);

        var contract = await engine.PlanContractAsync(expanded.Id);
        var contractSql = contract.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Contains(contractSql, s => s.StartsWith("ALTER TABLE \"public\".\"pcr_a_2024\" ADD CONSTRAINT \"pcr_a_amount_check\" CHECK (", StringComparison.Ordinal) && s.EndsWith(" NOT VALID", StringComparison.Ordinal));
        Assert.DoesNotContain(contractSql, s => s.StartsWith("DROP INDEX CONCURRENTLY", StringComparison.Ordinal));
        var completed = await engine.RunAsync(contract);
        Assert.Equal(MigrationPhase.Completed, completed.Phase);

        await _db.ExecuteAsync("ALTER TABLE pcr_b RENAME COLUMN qty TO amount");
        await WriteAsync("pcr_a", "amount", "amount", 4);
        await WriteAsync("pcr_b", "amount", "amount", 4);

        // The copies take the new name where the old one was part of theirs (documented); the rest is the plain rename's.
        var twin = (await ShapeAsync("pcr_b")).Replace("qty", "amount", StringComparison.Ordinal).Split('\n').Order(StringComparer.Ordinal);
        Assert.Equal(string.Join("\n", twin), string.Join("\n", (await ShapeAsync("pcr_a")).Split('\n').Order(StringComparer.Ordinal)));
        Assert.Equal(await RowsAsync("pcr_b"), await RowsAsync("pcr_a"));
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pg_proc WHERE proname LIKE 'sync_%pcr_a%'"));
    }

    [Fact]
    public async Task The_expand_holds_ACCESS_EXCLUSIVE_only_for_the_column_and_writes_between_it_and_the_trigger_are_brought_in_step_by_the_backfill()
    {
        await CreateAsync("pcr_w");
        var windowWrites = 0;
        var observer = new RecordingObserver
        {
            // Runs on the engine's thread after the column's transaction committed and before the
            // trigger's began: the old version's writes in that window reach no trigger.
            OnVerbose = message =>
            {
                if (message.Contains("expand step 2/", StringComparison.Ordinal) && message.Contains("Install the sync trigger", StringComparison.Ordinal))
                {
                    _db.ExecuteAsync("""
                        INSERT INTO pcr_w (id, created, region, qty) VALUES (7001, '2020-03-04', 'us', 7), (7002, '2022-03-04', 'eu', 8);
                        UPDATE pcr_w SET qty = qty + 500 WHERE id IN (7002, 10, 1500);
                        """).GetAwaiter().GetResult();
                    windowWrites++;
                }
            },
        };
        var engine = Engines.For(_db, observer);

        var plan = await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "pcr_w", "qty", "amount"));
        var column = plan.Steps[0];
        Assert.Equal(LockLevel.AccessExclusive, column.Lock);
        Assert.Contains(column.Statements, s => s.StartsWith("ALTER TABLE \"public\".\"pcr_w\" ADD COLUMN \"amount\"", StringComparison.Ordinal));
        Assert.DoesNotContain(column.Statements, s => s.StartsWith("CREATE TRIGGER", StringComparison.Ordinal) || s.StartsWith("CREATE FUNCTION", StringComparison.Ordinal));
        var trigger = plan.Steps[1];
        Assert.Equal(LockLevel.ShareRowExclusive, trigger.Lock);
        Assert.Equal(2, trigger.Statements.Count(s => s.StartsWith("CREATE TRIGGER", StringComparison.Ordinal)));

        var expanded = await engine.RunAsync(plan);
        Assert.Equal(1, windowWrites);
        Assert.Equal(14L, await CountAsync("SELECT count(*) FROM pg_trigger g JOIN pg_partition_tree('pcr_w') t ON t.relid = g.tgrelid WHERE g.tgname LIKE '%zdt%'"));

        // The window's rows are out of step (the inserts took the new column's default, the update left it NULL) ...
        Assert.Equal(4L, await CountAsync("SELECT count(*) FROM pcr_w WHERE id IN (7001, 7002, 10, 1500) AND amount IS DISTINCT FROM qty"));
        Assert.Equal(2L, await CountAsync("SELECT count(*) FROM pcr_w WHERE id IN (7001, 7002) AND amount = 0"));

        // ... as every row written before the expand is, and the backfill brings them in step with the rest.
        await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id), new BackfillOptions { BatchSize = 300 });
        Assert.Equal(0L, (await engine.TestColumnParityAsync(expanded.Id)).Mismatches);
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pcr_w WHERE amount IS DISTINCT FROM qty"));
        Assert.Equal(1525L, await CountAsync("SELECT sum(amount) FROM pcr_w WHERE id IN (7001, 7002, 10, 1500)"));
        var completed = await engine.RunAsync(await engine.PlanContractAsync(expanded.Id));
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
    }

    [Fact]
    public async Task The_contract_refuses_naming_a_partition_whose_sync_trigger_is_disabled_and_a_detached_partition_is_left_a_plain_table()
    {
        await CreateAsync("pcr_d");
        var engine = Engines.For(_db);
        var expanded = await engine.RunAsync(await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "pcr_d", "qty", "amount")));
        await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id));
        Assert.Equal(0L, (await engine.TestColumnParityAsync(expanded.Id)).Mismatches);

        var trigger = await _db.ScalarAsync<string>("SELECT tgname FROM pg_trigger WHERE tgrelid = 'pcr_d_2022_eu'::regclass AND tgname LIKE '%zdt%' ORDER BY tgname LIMIT 1");
        await _db.ExecuteAsync($"ALTER TABLE pcr_d_2022_eu DISABLE TRIGGER \"{trigger}\"");
        var refused = await Assert.ThrowsAsync<ZdtException>(async () => await engine.RunAsync(await engine.PlanContractAsync(expanded.Id)));
        Assert.Equal(ErrorIds.PartitionNotReady, refused.ErrorId);
        Assert.Contains("pcr_d_2022_eu lacks the sync trigger", refused.Message, StringComparison.Ordinal);
        Assert.Equal(MigrationPhase.Verified, (await engine.GetMigrationAsync(expanded.Id)).Phase);
        await _db.ExecuteAsync($"ALTER TABLE pcr_d_2022_eu ENABLE TRIGGER \"{trigger}\"");

        // Detached between backfill and contract: PostgreSQL removes the cloned sync triggers from
        // it, so it is a plain table with both columns in step as they were at the detach, its copy
        // of the index standalone, and nothing of the migration depends on it.
        await _db.ExecuteAsync("ALTER TABLE pcr_d DETACH PARTITION pcr_d_2020");
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pcr_d_2020'::regclass AND tgname LIKE '%zdt%'"));
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pcr_d_2020 WHERE qty IS DISTINCT FROM amount"));

        var completed = await engine.RunAsync(await engine.PlanContractAsync(expanded.Id));
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pcr_d_2020 WHERE qty IS DISTINCT FROM amount"));
        Assert.Equal(1L, await CountAsync("SELECT count(*) FROM pg_index WHERE indexrelid = 'pcr_d_2020_amount_idx'::regclass AND indisvalid"));
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pg_attribute a JOIN pg_partition_tree('pcr_d') t ON t.relid = a.attrelid WHERE a.attname = 'qty' AND NOT a.attisdropped"));
    }
}
