using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Backfill.Control;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// Operator controls of a running backfill (issue 11): the time box, pause/resume/retune from
/// another session, the load ceiling and a disconnected replica's slot, against the fixture's server.
/// </summary>
public class BackfillControlTests : IClassFixture<TestDatabase>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly TestDatabase _db;

    public BackfillControlTests(TestDatabase db)
    {
        _db = db;
    }

    private async Task<Migration> ExpandAsync(string table, int rows)
    {
        await _db.ExecuteAsync($"""
            CREATE TABLE {table} (id int PRIMARY KEY, a text, qty int);
            INSERT INTO {table} SELECT g, 'v' || g, g FROM generate_series(1, {rows}) g;
            """);
        return await Engines.For(_db).RenameColumnAsync(table, "a", "b");
    }

    private Task<long> PendingAsync(string table)
        => _db.ScalarAsync<long>($"SELECT count(*) FROM {table} WHERE b IS DISTINCT FROM a");

    /// <summary>Polls Get-Migration's view of the backfill until it says what the test waits for.</summary>
    private async Task<Migration> WaitForAsync(long id, Func<Migration, bool> condition, Task running)
    {
        var engine = Engines.For(_db);
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var migration = await engine.GetMigrationAsync(id);
            if (condition(migration))
            {
                return migration;
            }

            Assert.False(running.IsCompleted && !condition(migration), $"The backfill ended first: {migration.Phase}, {migration.Backfill}; {(running.IsFaulted ? running.Exception : null)}");
            Assert.True(DateTime.UtcNow < deadline, $"Still waiting: {migration.Backfill}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Time_box_stops_at_a_batch_boundary_with_the_checkpoint_kept_and_a_second_run_resumes_to_parity_0()
    {
        var migration = await ExpandAsync("bc_timebox", 20_000);
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var stopped = await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 200, Delay = TimeSpan.FromMilliseconds(20), MaxDuration = TimeSpan.FromSeconds(1) });

        Assert.Equal(MigrationPhase.Backfilling, stopped.Phase);
        Assert.Equal(BackfillState.Stopped, stopped.Backfill!.State);
        Assert.Contains("time box", stopped.Backfill.Reason);
        Assert.Contains($"run Invoke-Backfill -Id {migration.Id} again", observer.Warnings.Single());
        var pending = await PendingAsync("bc_timebox");
        Assert.InRange(pending, 1, 20_000 - 200);

        // Every row the first run counted is in the table: the checkpoint is where the data is.
        Assert.Equal(20_000 - pending, stopped.RowsBackfilled);

        var done = await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 1000 });
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.Equal(BackfillState.Finished, done.Backfill!.State);
        Assert.Equal(20_000, done.RowsBackfilled);
        var parity = await engine.TestColumnParityAsync(migration.Id);
        Assert.Equal(0, parity.Mismatches);
    }

    [Fact]
    public async Task StopAt_in_the_past_stops_before_the_first_batch()
    {
        var migration = await ExpandAsync("bc_stopat", 500);
        var stopped = await Engines.For(_db).BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100, StopAt = DateTimeOffset.UtcNow.AddMinutes(-1) });

        Assert.Equal(MigrationPhase.Backfilling, stopped.Phase);
        Assert.Contains("-StopAt", stopped.Backfill!.Reason);
        Assert.Equal(500, await PendingAsync("bc_stopat"));
    }

    [Fact]
    public async Task Pause_resume_and_retune_from_another_session_act_on_the_running_backfill()
    {
        var migration = await ExpandAsync("bc_pause", 10_000);
        var observer = new RecordingObserver();
        var running = Engines.For(_db, observer).BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100, Delay = TimeSpan.FromMilliseconds(30) });
        var operator_ = Engines.For(_db);
        await WaitForAsync(migration.Id, m => m.RowsBackfilled > 0, running);

        var suspended = await operator_.SuspendBackfillAsync(migration.Id);
        Assert.True(suspended.BackfillControl!.Paused);
        var paused = await WaitForAsync(migration.Id, m => m.Backfill?.State == BackfillState.Paused, running);
        Assert.Contains("Suspend-Backfill", paused.Backfill!.Reason);

        // Paused means no batch: the row count stays put while the heartbeat goes on.
        await Task.Delay(1500);
        var later = await operator_.GetMigrationAsync(migration.Id);
        Assert.Equal(paused.RowsBackfilled, later.RowsBackfilled);
        Assert.Equal(BackfillState.Paused, later.Backfill!.State);
        Assert.True(later.Backfill.At > paused.Backfill.At, "the heartbeat goes on while paused");
        Assert.False(running.IsCompleted);

        await operator_.SetBackfillThrottleAsync(migration.Id, new BackfillRetune { BatchSize = 2000, Delay = TimeSpan.Zero });
        await operator_.ResumeBackfillAsync(migration.Id);
        var done = await running.WaitAsync(Patience);

        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.Equal(BackfillState.Finished, done.Backfill!.State);
        Assert.Equal(2000, done.Backfill.BatchSize);
        Assert.Contains(observer.VerboseMessages, m => m.Contains("batch size 2000"));
        Assert.Equal(0, await PendingAsync("bc_pause"));
        var events = (await operator_.GetMigrationAsync(migration.Id)).Events.Select(e => e.Action).ToList();
        Assert.Contains("backfill paused", events);
        Assert.Contains("backfill resumed", events);
        Assert.Contains("backfill retuned", events);
    }

    [Theory]
    [InlineData(null, null, 100.0, false)]
    [InlineData(500.0, null, null, false)]
    [InlineData(null, 2000, null, false)]
    [InlineData(null, null, null, true)]
    public void An_operators_pace_replaces_the_adaptive_throttle_as_the_same_Invoke_Backfill_parameters_do(double? delayMs, int? batchSize, double? targetMs, bool adaptive)
    {
        // Set-BackfillThrottle -TargetBatchTime 100ms on a run at the defaults: a throttle left on
        // would keep its own duty cycle over the pace the DBA asked for.
        var control = new BackfillControl { DelayMilliseconds = delayMs, BatchSize = batchSize, TargetBatchTimeMilliseconds = targetMs, MaxLoad = 4 };
        var options = control.ApplyTo(new BackfillOptions());
        Assert.Equal(adaptive, options.IsAdaptive);
        Assert.Equal(4, options.MaxLoad);
        Assert.False(new BackfillControl { TargetBatchTimeMilliseconds = 100 }.ApplyTo(new BackfillOptions { Adaptive = false }).IsAdaptive);
    }

    [Fact]
    public async Task A_pause_set_before_the_run_holds_it_until_resumed_and_a_retune_is_dropped_by_the_next_run()
    {
        var migration = await ExpandAsync("bc_prepause", 1000);
        var operator_ = Engines.For(_db);
        await operator_.SuspendBackfillAsync(migration.Id);
        await operator_.SetBackfillThrottleAsync(migration.Id, new BackfillRetune { MaxLoad = 7 });

        var stopped = await Engines.For(_db).BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100, MaxDuration = TimeSpan.FromSeconds(1.5) });
        Assert.Equal(1000, await PendingAsync("bc_prepause"));
        Assert.Contains("time box", stopped.Backfill!.Reason);
        Assert.True(stopped.BackfillControl!.Paused);
        Assert.Null(stopped.BackfillControl.MaxLoad);
    }

    [Fact]
    public async Task MaxLoad_holds_the_backfill_while_other_sessions_are_busy_and_a_live_retune_releases_it()
    {
        var migration = await ExpandAsync("bc_load", 5000);
        var observer = new RecordingObserver();
        var busy = new List<NpgsqlConnection>();
        var sleepers = new List<Task>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var connection = await _db.OpenAsync();
                busy.Add(connection);
                sleepers.Add(new NpgsqlCommand("SELECT pg_sleep(60)", connection).ExecuteNonQueryAsync());
            }

            var running = Engines.For(_db, observer).BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100, MaxLoad = 2 });
            var throttled = await WaitForAsync(migration.Id, m => m.Backfill?.State == BackfillState.Throttled, running);
            Assert.Contains("above -MaxLoad 2", throttled.Backfill!.Reason);
            Assert.Equal(5000, await PendingAsync("bc_load"));

            await Engines.For(_db).SetBackfillThrottleAsync(migration.Id, new BackfillRetune { MaxLoad = 10_000 });
            var done = await running.WaitAsync(Patience);
            Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        }
        finally
        {
            await _db.ExecuteAsync("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'");

            // A connection is disposed only after its cancelled statement has come back.
            await Task.WhenAll(sleepers.Select(s => s.ContinueWith(_ => { }, TaskScheduler.Default)));
            foreach (var connection in busy)
            {
                await connection.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task MaxReplicationLag_counts_a_replication_slot_whose_replica_is_gone_while_its_WAL_grows()
    {
        var migration = await ExpandAsync("bc_slot", 30_000);
        var slot = "zdt_test_gone_" + migration.Id;
        await _db.ExecuteAsync($"SELECT pg_create_physical_replication_slot('{slot}', true)");
        try
        {
            var observer = new RecordingObserver();
            var running = Engines.For(_db, observer).BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100, Delay = TimeSpan.FromMilliseconds(10), MaxReplicationLag = TimeSpan.FromSeconds(1) });
            var throttled = await WaitForAsync(migration.Id, m => m.Backfill?.State == BackfillState.Throttled, running);
            Assert.Contains($"replication slot \"{slot}\"", throttled.Backfill!.Reason);
            Assert.True(await PendingAsync("bc_slot") > 0);

            // The replica's slot is dropped (abandoned): the backfill goes on to the end.
            await _db.ExecuteAsync($"SELECT pg_drop_replication_slot('{slot}')");
            var done = await running.WaitAsync(Patience);
            Assert.Equal(MigrationPhase.Backfilled, done.Phase);
            Assert.Contains(observer.VerboseMessages, m => m.Contains("no replica connected"));
        }
        finally
        {
            await _db.ExecuteAsync($"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'");
        }
    }
}
