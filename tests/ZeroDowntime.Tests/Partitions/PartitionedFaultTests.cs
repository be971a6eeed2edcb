using System.Globalization;
using System.Text.Json;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// The backfill of a partitioned table killed (SIGKILL of the process running it, as FaultPathTests
/// does for a plain table) while it is inside a partition that is not the first: the checkpoint
/// names that partition and the last key done in it, and the next run resumes there.
/// </summary>
public class PartitionedFaultTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public PartitionedFaultTests(TestDatabase db)
    {
        _db = db;
    }

    private Task<long> CountAsync(string sql) => _db.ScalarAsync<long>(sql);

    [Fact]
    public async Task A_backfill_killed_inside_the_second_partition_resumes_inside_it_and_walks_no_finished_partition_again()
    {
        await PartitionedTrees.CreateAsync(_db, "pfk", rows: 8000);
        await _db.ExecuteAsync("ALTER TABLE pfk ADD PRIMARY KEY (id, created, region)");
        var total = await CountAsync("SELECT count(*) FROM pfk");
        var first = await CountAsync("SELECT count(*) FROM pfk_2020");
        var second = await CountAsync("SELECT 'pfk_2021'::regclass::oid::bigint");
        var engine = Faults.Engine(_db, "f-part-kill-engine");
        var migration = await engine.RenameColumnAsync("pfk", "qty", "amount");
        Assert.Equal(total, await CountAsync("SELECT count(*) FROM pfk WHERE amount IS NULL"));

        // Walked leaf by leaf (pfk_2020 first, then pfk_2021, ...), 100 rows a batch, 100 ms apart:
        // killed once it is a few batches into pfk_2021.
        var id = migration.Id.ToString(CultureInfo.InvariantCulture);
        await using (var host = FaultHost.Start(Faults.ConnectionString(_db, "f-part-kill"), "backfill", id, "100", "100"))
        {
            await Faults.WaitUntilAsync(_db, $"SELECT (backfill_checkpoint->>'table')::bigint = {second} AND backfill_checkpoint->'last' IS NOT NULL AND rows_backfilled >= {first + 300} FROM zdt.migration WHERE id = {id}");
            await host.KillAsync();
        }

        await Faults.WaitForNoSessionAsync(_db, "f-part-kill");
        var killed = await engine.GetMigrationAsync(migration.Id);
        Assert.Equal(MigrationPhase.Backfilling, killed.Phase);

        // The checkpoint names the partition it was in, the one finished before it, and the last key done there.
        string[] last;
        using (var checkpoint = JsonDocument.Parse((await _db.ScalarAsync<string>($"SELECT backfill_checkpoint::text FROM zdt.migration WHERE id = {id}"))!))
        {
            Assert.Equal(second, checkpoint.RootElement.GetProperty("table").GetInt64());
            Assert.Equal(await CountAsync("SELECT 'pfk_2020'::regclass::oid::bigint"), Assert.Single(checkpoint.RootElement.GetProperty("done").EnumerateArray()).GetInt64());
            last = checkpoint.RootElement.GetProperty("last").EnumerateArray().Select(k => k.GetString()!).ToArray();
        }

        // What the checkpoint says is what the table holds: pfk_2020 filled, pfk_2021 filled up to
        // the last key and not after it, the later partitions untouched; each filled row counted once.
        var upTo = $"(id, created, region) <= ({last[0]}::bigint, '{last[1]}'::date, '{last[2]}'::text)";
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pfk_2020 WHERE amount IS NULL"));
        Assert.Equal(0L, await CountAsync($"SELECT count(*) FROM pfk_2021 WHERE {upTo} AND amount IS NULL"));
        Assert.Equal(0L, await CountAsync($"SELECT count(*) FROM pfk_2021 WHERE NOT {upTo} AND amount IS NOT NULL"));
        Assert.True(await CountAsync($"SELECT count(*) FROM pfk_2021 WHERE NOT {upTo}") > 0, "killed before the end of pfk_2021");
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pfk WHERE created >= '2022-01-01' AND amount IS NOT NULL"));
        Assert.Equal(await CountAsync("SELECT count(*) FROM pfk WHERE amount IS NOT NULL"), killed.RowsBackfilled);

        // The application writes while nothing runs: the trigger keeps those rows in step.
        await _db.ExecuteAsync("UPDATE pfk SET qty = qty + 1000 WHERE id % 211 = 0; INSERT INTO pfk (id, created, region, qty) VALUES (9001, '2021-12-30', 'us', 5)");

        var observer = new RecordingObserver();
        var resumed = await Engines.For(_db, observer).BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100 });
        Assert.Equal(MigrationPhase.Backfilled, resumed.Phase);
        Assert.Contains(observer.VerboseMessages, m => m.Contains("Resuming the backfill", StringComparison.Ordinal) && m.Contains("\"pfk_2021\"", StringComparison.Ordinal));

        // The resumed run starts inside pfk_2021 and never walks pfk_2020 again.
        var walked = observer.ProgressUpdates.Select(p => p.Activity).Where(a => a.StartsWith("Backfill \"public\".", StringComparison.Ordinal)).ToList();
        Assert.StartsWith("Backfill \"public\".\"pfk_2021\"", walked.First(), StringComparison.Ordinal);
        Assert.DoesNotContain(walked, a => a.StartsWith("Backfill \"public\".\"pfk_2020\"", StringComparison.Ordinal));

        // Every row filled exactly once over both runs (the ones the trigger kept in step after the kill were not pending).
        var filledByTrigger = await CountAsync($"SELECT count(*) FROM pfk WHERE (id % 211 = 0 AND NOT (created < '2021-01-01' OR (created < '2022-01-01' AND {upTo})))");
        Assert.Equal(total - filledByTrigger, (await engine.GetMigrationAsync(migration.Id)).RowsBackfilled);
        Assert.Equal(0L, (await engine.TestColumnParityAsync(migration.Id)).Mismatches);
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pfk WHERE amount IS DISTINCT FROM qty"));
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
        Assert.Equal(total + 1, await CountAsync("SELECT count(*) FROM pfk WHERE amount = (id % 50) + CASE WHEN id % 211 = 0 THEN 1000 ELSE 0 END OR id = 9001"));
    }
}
