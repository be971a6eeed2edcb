using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// Issue 11, item 3: a finished backfill vacuums its table (VACUUM (ANALYZE), planned as a step,
/// lock-safe), so autovacuum, woken by the backfill's dead rows, is not in the contract's way.
/// A session holding SHARE UPDATE EXCLUSIVE (what a VACUUM or autovacuum worker holds) stands in
/// for the worker.
/// </summary>
public class VacuumAfterBackfillTests : IClassFixture<TestDatabase>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly TestDatabase _db;

    public VacuumAfterBackfillTests(TestDatabase db)
    {
        _db = db;
    }

    private async Task<Migration> ExpandAsync(string table, int rows)
    {
        await _db.ExecuteAsync($"""
            CREATE TABLE {table} (id int PRIMARY KEY, a text, qty int) WITH (autovacuum_enabled = off);
            INSERT INTO {table} SELECT g, 'v' || g, g FROM generate_series(1, {rows}) g;
            """);
        return await Engines.For(_db).RenameColumnAsync(table, "a", "b");
    }

    /// <summary>When the table was last vacuumed by hand (autovacuum sets last_autovacuum instead); the statistics may lag a little before PostgreSQL 15.</summary>
    private async Task<(DateTime? Vacuumed, DateTime? Analyzed)> ManualMaintenanceAsync(string table, bool wait)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            await using var connection = await _db.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relid = $1::regclass", connection);
            cmd.Parameters.Add(new NpgsqlParameter { Value = table });
            await using var reader = await cmd.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            var result = (reader.IsDBNull(0) ? (DateTime?)null : reader.GetDateTime(0), reader.IsDBNull(1) ? (DateTime?)null : reader.GetDateTime(1));
            if (!wait || result.Item1 is not null || DateTime.UtcNow > deadline)
            {
                return result;
            }

            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task The_backfill_plan_ends_with_a_lock_safe_vacuum_analyze_which_runs_once_the_table_is_filled()
    {
        var migration = await ExpandAsync("vab_plain", 5_000);
        var engine = Engines.For(_db, new RecordingObserver());

        var plan = await engine.PlanBackfillAsync(migration.Id);

        var vacuum = plan.Steps[^1];
        Assert.Equal("VACUUM (ANALYZE) \"public\".\"vab_plain\"", vacuum.Statements[^1]);
        Assert.False(vacuum.Transactional);
        Assert.Equal(LockLevel.ShareUpdateExclusive, vacuum.Lock);
        var deadlockTimeout = TimeSpan.FromMilliseconds(await _db.ScalarAsync<double>("SELECT setting::float8 FROM pg_settings WHERE name = 'deadlock_timeout'"));
        Assert.True(vacuum.LockTimeout > deadlockTimeout, $"lock_timeout {vacuum.LockTimeout} must outwait deadlock_timeout {deadlockTimeout} so that PostgreSQL cancels an autovacuum worker in the way");
        var script = plan.ToScript(Engines.Fast.LockTimeout);
        Assert.Contains("VACUUM (ANALYZE) \"public\".\"vab_plain\";", script);
        Assert.Contains("SET vacuum_cost_delay", script);
        Assert.Equal((null, null), await ManualMaintenanceAsync("vab_plain", wait: false));

        var done = await engine.RunBackfillAsync(plan, new BackfillOptions { BatchSize = 1000 });

        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        var (vacuumed, analyzed) = await ManualMaintenanceAsync("vab_plain", wait: true);
        Assert.NotNull(vacuumed);
        Assert.NotNull(analyzed);
        Assert.Equal(1L, await _db.ScalarAsync<long>($"SELECT count(*) FROM zdt.migration_event WHERE migration_id = {migration.Id} AND action = 'vacuum after backfill' AND sql LIKE '%VACUUM (ANALYZE) \"public\".\"vab_plain\";'"));
    }

    [Fact]
    public async Task Planned_without_the_vacuum_the_backfill_neither_shows_nor_runs_it()
    {
        var migration = await ExpandAsync("vab_skip", 3_000);
        var engine = Engines.For(_db);

        var plan = await engine.PlanBackfillAsync(migration.Id, vacuumAfter: false);

        Assert.DoesNotContain("VACUUM", plan.ToScript(Engines.Fast.LockTimeout));
        var done = await engine.RunBackfillAsync(plan, new BackfillOptions { BatchSize = 1000 });
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        await Task.Delay(700); // before PostgreSQL 15 a vacuum's statistics arrive with a delay: give them the time to show one
        Assert.Null((await ManualMaintenanceAsync("vab_skip", wait: false)).Vacuumed);
        Assert.Equal(0L, await _db.ScalarAsync<long>($"SELECT count(*) FROM zdt.migration_event WHERE migration_id = {migration.Id} AND action = 'vacuum after backfill'"));
    }

    [Fact]
    public async Task The_vacuum_waits_behind_a_share_update_exclusive_holder_without_holding_up_the_applications_writes_and_runs_when_it_is_gone()
    {
        var migration = await ExpandAsync("vab_held", 5_000);
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);
        var plan = await engine.PlanBackfillAsync(migration.Id);

        // The stand-in for an autovacuum worker: SHARE UPDATE EXCLUSIVE in an open transaction.
        await using var holder = await _db.OpenAsync();
        await using var holding = await holder.BeginTransactionAsync();
        await using (var lockCmd = new NpgsqlCommand("LOCK TABLE vab_held IN SHARE UPDATE EXCLUSIVE MODE", holder, holding))
        {
            await lockCmd.ExecuteNonQueryAsync();
        }

        var backfill = engine.RunBackfillAsync(plan, new BackfillOptions { BatchSize = 1000 });

        // Wait until the vacuum is queued for its lock, then write as the application does: the
        // writes go through at once (lock_timeout 500 ms), the queued vacuum is not in their way.
        var deadline = DateTime.UtcNow + Patience;
        while (await _db.ScalarAsync<long>("SELECT count(*) FROM pg_locks WHERE relation = 'vab_held'::regclass AND NOT granted AND mode = 'ShareUpdateExclusiveLock'") == 0)
        {
            Assert.False(backfill.IsCompleted, $"The backfill ended before its vacuum waited: {(backfill.IsFaulted ? backfill.Exception : "finished")}");
            Assert.True(DateTime.UtcNow < deadline, "The vacuum never waited for its lock.");
            await Task.Delay(20);
        }

        await using (var app = await _db.OpenAsync())
        {
            await using var write = new NpgsqlCommand("SET lock_timeout = '500ms'; UPDATE vab_held SET qty = qty + 1 WHERE id <= 100; INSERT INTO vab_held (id, a, qty) VALUES (100001, 'new', 1)", app);
            await write.ExecuteNonQueryAsync();
        }

        Assert.False(backfill.IsCompleted);
        await holding.CommitAsync();
        var done = await backfill;

        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.NotNull((await ManualMaintenanceAsync("vab_held", wait: true)).Vacuumed);
        Assert.Empty(observer.Warnings);
        Assert.Contains(observer.VerboseMessages, m => m.Contains("VACUUM (ANALYZE) \"public\".\"vab_held\" after the backfill' done after", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_vacuum_that_cannot_get_its_lock_leaves_the_backfill_finished_with_a_warning_saying_what_to_run()
    {
        var migration = await ExpandAsync("vab_gave_up", 3_000);
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer, Engines.Fast with { LockRetryTimeout = TimeSpan.FromSeconds(3) });
        var plan = await engine.PlanBackfillAsync(migration.Id);

        await using var holder = await _db.OpenAsync();
        await using var holding = await holder.BeginTransactionAsync();
        await using (var lockCmd = new NpgsqlCommand("LOCK TABLE vab_gave_up IN SHARE UPDATE EXCLUSIVE MODE", holder, holding))
        {
            await lockCmd.ExecuteNonQueryAsync();
        }

        var done = await engine.RunBackfillAsync(plan, new BackfillOptions { BatchSize = 1000 });
        await holding.RollbackAsync();

        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        var warning = Assert.Single(observer.Warnings);
        Assert.Contains("is finished, but 'VACUUM (ANALYZE) \"public\".\"vab_gave_up\" after the backfill' did not run", warning);
        Assert.Contains("run VACUUM (ANALYZE) \"public\".\"vab_gave_up\" before the contract", warning);
        Assert.Null((await ManualMaintenanceAsync("vab_gave_up", wait: false)).Vacuumed);

        // The contract does not depend on it.
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
    }
}
