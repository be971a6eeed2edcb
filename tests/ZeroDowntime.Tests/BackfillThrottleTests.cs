using System.Collections.Concurrent;
using System.Text.Json;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Backfill.Throttle;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;
using Xunit.Abstractions;

namespace ZeroDowntime.Tests;

/// <summary>
/// The backfill's pace: the adaptive throttle against a real server under an injected saturating
/// load, the explicit overrides that switch it off, and the figures a run leaves behind (wall-clock
/// duration with its pauses, the batch size a resumed run starts at). Assertions are on the
/// throttle's recorded decisions and on the ledger, not on how fast anything went.
/// The class runs alone (<see cref="ServerLoadMeasurements"/>): the throttle's signal is the whole
/// server's rate, and other test classes running beside it are load it would rightly react to.
/// </summary>
[Collection(nameof(ServerLoadMeasurements))]
public class BackfillThrottleTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;
    private readonly ITestOutputHelper _output;

    public BackfillThrottleTests(TestDatabase db, ITestOutputHelper output)
    {
        _db = db;
        _output = output;
    }

    [Fact]
    public async Task The_throttle_backs_off_under_a_saturating_load_and_speeds_up_again_when_it_stops()
    {
        // Enough rows that the backfill at full speed outlasts several probes: on a noisy server a
        // loss of 15-30% stands out of the noise only over two to five of them (20-45 s).
        await Tables.CreateOrdersAsync(_db, "orders_throttled", rows: 1_500_000);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnAsync("orders_throttled", "email", "contact");
        var decisions = new ConcurrentQueue<ThrottleDecision>();
        var backedOff = new TaskCompletionSource();
        var recovered = new TaskCompletionSource();
        var loadStopped = false;
        var options = new BackfillOptions
        {
            Throttle = ThrottleSettings.Default with
            {
                // Full speed from the first batch (the default starts a busy server at 35%, which
                // may already be harmless): the throttle must find the harm itself, through the
                // load's own noise, and back off.
                StartDutyWhenBusy = 1,
                OnDecision = d =>
                {
                    decisions.Enqueue(d);
                    _output.WriteLine($"{d.At.TotalSeconds,6:0.0} s {d}");
                    if (d.Action == ThrottleAction.BackOff)
                    {
                        backedOff.TrySetResult();
                    }

                    if (Volatile.Read(ref loadStopped) && d.Action is ThrottleAction.Idle or ThrottleAction.Recover)
                    {
                        recovered.TrySetResult();
                    }
                },
            },
        };

        using var cancel = new CancellationTokenSource();
        await using var load = await SaturatingLoad.StartAsync(_db, "throttle_app");

        // The load's first seconds (connections opening, the test process compiling its code) are
        // slower than the rest: a probe then reads the load's own warm-up as harm or as a gain.
        await Task.Delay(TimeSpan.FromSeconds(3));
        var backfill = engine.BackfillAsync(migration.Id, options, cancel.Token);

        // Under the load the throttle must find harm and slow down (it would otherwise keep its duty).
        await Task.WhenAny(backedOff.Task, backfill, Task.Delay(TimeSpan.FromSeconds(120)));
        Assert.True(backedOff.Task.IsCompleted, "no back-off under a saturating load: " + string.Join("; ", decisions));
        var throttled = decisions.Min(d => d.Duty);
        Assert.True(throttled < 1);

        // Load gone: the next decisions take the speed back (Idle: full speed at once; Recover: a step up).
        await load.StopAsync();
        Volatile.Write(ref loadStopped, true);
        await Task.WhenAny(recovered.Task, backfill, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(recovered.Task.IsCompleted, "no recovery after the load stopped: " + string.Join("; ", decisions));
        Assert.True(decisions.Last().Duty > throttled, string.Join("; ", decisions));

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => backfill);

        // What was done stays done, and the rest runs to the end.
        var done = await engine.BackfillAsync(migration.Id, new BackfillOptions { Adaptive = false });
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.Equal(0, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_throttled WHERE contact IS DISTINCT FROM email"));
    }

    [Fact]
    public async Task The_throttle_does_not_count_the_backfills_own_transactions_as_another_sessions()
    {
        // Batches of 50 rows, a few milliseconds each: hundreds per second. -MaxLoad makes the
        // gate read the server before every batch as well. One transaction per batch (or per gate
        // read) left in the counters would read as a load of hundreds of transactions per second
        // on this otherwise idle server (a pooled connection's reset on return was one: the demo's
        // backfill read 800 tx/s of "others" that were its own).
        await Tables.CreateOrdersAsync(_db, "orders_own_count", rows: 150_000);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnAsync("orders_own_count", "email", "contact");
        var decisions = new ConcurrentQueue<ThrottleDecision>();
        var options = new BackfillOptions
        {
            InitialBatchSize = 50,
            MaxBatchSize = 50,
            MaxLoad = 1000,
            Throttle = ThrottleSettings.Default with
            {
                MinRows = 0,
                OnDecision = d =>
                {
                    decisions.Enqueue(d);
                    _output.WriteLine($"{d.At.TotalSeconds,6:0.0} s {d}");
                },
            },
        };

        var done = await engine.BackfillAsync(migration.Id, options);
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        var working = decisions.Where(d => d.Action != ThrottleAction.Start && d.WorkingRate is not null).ToList();
        Assert.True(working.Count >= 2, "too few windows of work: " + string.Join("; ", decisions));
        var rowsPerSecond = done.BackfillRowsPerSecond!.Value;
        var batchesPerSecond = rowsPerSecond / 50;
        _output.WriteLine($"{rowsPerSecond:0} rows/s = {batchesPerSecond:0} batches/s");

        // One transaction per batch left in the counters reads as at least the batch rate in every
        // window. What the reading may show besides: the server's background (autovacuum, a few
        // transactions per second) and the publishing lag: a backend adds its commits to
        // pg_stat_database about once a second, so the counters climb in steps of up to a second of
        // batches while ours are taken out as they happen, and a step can come late: windows of
        // ~3 s then read 0 (below, clamped) and the next one the catch-up. A CI run read 0, 0, 64,
        // 3, 9 and 7 tx/s at 197 batches/s, a local one 0, 0, 105 at 258. (At the default batch
        // sizes the backfill makes a few transactions per second and the lag is lost in the
        // noise; 50-row batches make it hundreds.) Hence a bound per window under the batch rate
        // and a tighter one on the mean, where the steps even out.
        var readings = string.Join("; ", working);
        Assert.All(working, d => Assert.True(d.WorkingRate < 0.8 * batchesPerSecond, $"others read {d.WorkingRate:0} tx/s in one window while only the backfill ran ({batchesPerSecond:0} batches/s): {readings}"));
        var mean = working.Average(d => d.WorkingRate!.Value);
        Assert.True(mean < 0.3 * batchesPerSecond, $"others read {mean:0} tx/s on average while only the backfill ran ({batchesPerSecond:0} batches/s): {readings}");
        Assert.All(working, d => Assert.Equal(1, d.Duty));
    }

    [Fact]
    public async Task An_explicit_pace_switches_the_throttle_off()
    {
        var paces = new (string Name, BackfillOptions Options)[]
        {
            ("default", new BackfillOptions()),
            ("BatchSize", new BackfillOptions { BatchSize = 500 }),
            ("Delay", new BackfillOptions { Delay = TimeSpan.FromMilliseconds(1) }),
            ("Adaptive = false (Invoke-Backfill's -TargetBatchTime)", new BackfillOptions { Adaptive = false, TargetBatchTime = TimeSpan.FromMilliseconds(50) }),
        };
        var engine = Engines.For(_db);
        var seen = new Dictionary<string, int>();
        foreach (var (name, pace) in paces)
        {
            var table = "orders_pace_" + seen.Count;
            await Tables.CreateOrdersAsync(_db, table, rows: 3000);
            var migration = await engine.RenameColumnAsync(table, "email", "contact");
            var decisions = 0;
            var options = pace with { Throttle = ThrottleSettings.Default with { MinRows = 0, ProbeWindow = TimeSpan.FromMilliseconds(300), OnDecision = d => { Interlocked.Increment(ref decisions); _output.WriteLine($"{name}: {d}"); } } };
            var done = await engine.BackfillAsync(migration.Id, options);
            Assert.Equal(MigrationPhase.Backfilled, done.Phase);
            seen[name] = decisions;
        }

        Assert.True(seen["default"] > 0, "the default pace is the adaptive throttle: it decides at least once, before its first batch");
        Assert.All(seen.Where(s => s.Key != "default"), s => Assert.True(s.Value == 0, $"{s.Key}: {s.Value} throttle decisions"));
    }

    [Fact]
    public async Task MaxImpact_is_the_throttles_limit_and_needs_the_throttle()
    {
        await Tables.CreateOrdersAsync(_db, "orders_max_impact", rows: 3000);
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);
        var migration = await engine.RenameColumnAsync("orders_max_impact", "email", "contact");
        var throttle = ThrottleSettings.Default with { MinRows = 0, ProbeWindow = TimeSpan.FromMilliseconds(300) };

        await Assert.ThrowsAsync<ArgumentException>(() => engine.BackfillAsync(migration.Id, new BackfillOptions { MaxImpactPercent = 15, BatchSize = 100, Throttle = throttle }));
        Assert.Equal(3000, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_max_impact WHERE contact IS NULL"));

        var done = await engine.BackfillAsync(migration.Id, new BackfillOptions { MaxImpactPercent = 15, Throttle = throttle });
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.Contains(observer.VerboseMessages, m => m.Contains("at most 15% of their throughput", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_table_smaller_than_the_throttle_minimum_is_not_throttled()
    {
        await Tables.CreateOrdersAsync(_db, "orders_small_pace", rows: 2000);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnAsync("orders_small_pace", "email", "contact");
        var decisions = 0;
        var done = await engine.BackfillAsync(migration.Id, new BackfillOptions { Throttle = ThrottleSettings.Default with { OnDecision = _ => Interlocked.Increment(ref decisions) } });
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.Equal(0, decisions);
        Assert.Equal(TimeSpan.Zero, done.BackfillPausedDuration);
    }

    [Fact]
    public async Task The_adapted_batch_size_survives_MaxBatches()
    {
        await Tables.CreateOrdersAsync(_db, "orders_batch_size", rows: 20_000);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnAsync("orders_batch_size", "email", "contact");

        // A target no batch reaches: every batch doubles the size (1,000, 2,000, 4,000).
        var pace = new BackfillOptions { Adaptive = false, TargetBatchTime = TimeSpan.FromSeconds(30), MaxBatches = 3 };
        var partial = await engine.BackfillAsync(migration.Id, pace);
        Assert.Equal(7000, partial.RowsBackfilled);
        Assert.Equal(4000, await CheckpointBatchSizeAsync(migration.Id));

        // The next run goes on at 4,000 (then 8,000), not from 1,000 again.
        var resumed = await engine.BackfillAsync(migration.Id, pace with { MaxBatches = 2 });
        Assert.Equal(7000 + 4000 + 8000, resumed.RowsBackfilled);
        Assert.Equal(8000, await CheckpointBatchSizeAsync(migration.Id));
    }

    [Fact]
    public async Task The_backfill_duration_is_wall_clock_time_with_its_pauses_reported_apart()
    {
        await Tables.CreateOrdersAsync(_db, "orders_wall_clock", rows: 1000);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnAsync("orders_wall_clock", "email", "contact");

        // Ten batches, each followed by a 200 ms pause: at least 1.8 s of pauses between the first and the last.
        var done = await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100, Delay = TimeSpan.FromMilliseconds(200) });
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.NotNull(done.BackfillPausedDuration);
        Assert.True(done.BackfillPausedDuration >= TimeSpan.FromSeconds(1.8), $"paused {done.BackfillPausedDuration}");
        Assert.True(done.BackfillDuration >= done.BackfillPausedDuration, $"duration {done.BackfillDuration} < paused {done.BackfillPausedDuration}");
        // The duration is a TimeSpan (whole ticks); the rate comes from the ledger's seconds.
        Assert.InRange(done.BackfillRowsPerSecond!.Value / (1000 / done.BackfillDuration!.Value.TotalSeconds), 0.9999, 1.0001);
    }

    private async Task<int?> CheckpointBatchSizeAsync(long id)
    {
        var json = await _db.ScalarAsync<string>($"SELECT backfill_checkpoint::text FROM zdt.migration WHERE id = {id}");
        return JsonDocument.Parse(json!).RootElement.GetProperty("batchSize").GetInt32();
    }
}
