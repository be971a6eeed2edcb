using System.Diagnostics;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Observing;

namespace ZeroDowntime.Engine.Backfill.Throttle;

/// <summary>
/// How the backfill loop paces itself: called once before the first batch and after every batch,
/// it sleeps as long as the pace asks and says how long it paused (reported apart from the work).
/// </summary>
internal abstract class BackfillPacer : IAsyncDisposable
{
    /// <summary>The explicit pace (-Delay / -BatchSize / -TargetBatchTime) or the adaptive throttle (the default).</summary>
    public static BackfillPacer For(BackfillOptions options, ConnectionTarget target, IMigrationObserver observer, string activity, long rowsLeft)
        => options.IsAdaptive && rowsLeft >= options.Throttle.MinRows
            ? new AdaptivePacer(options.ThrottleForRun, target, observer, activity)
            : new FixedPacer(options.Delay);

    public virtual Task<TimeSpan> StartAsync(CancellationToken ct) => Task.FromResult(TimeSpan.Zero);

    /// <summary>
    /// After each batch: sleeps as the pace asks and returns the time paused. Given how long the
    /// batch took and how many transactions it ended (the backfill's own, to take out of the
    /// server's counters).
    /// </summary>
    public abstract Task<TimeSpan> AfterBatchAsync(TimeSpan batchElapsed, int transactions, CancellationToken ct);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>For the heartbeat: why the backfill runs below full speed; null when it does not.</summary>
    public virtual string? Describe() => null;

    /// <summary>Sleeps this long (nothing when zero) and returns the time slept.</summary>
    public static async Task<TimeSpan> SleepAsync(TimeSpan duration, CancellationToken ct)
    {
        if (duration <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }

        await Task.Delay(duration, ct).ConfigureAwait(false);
        return duration;
    }
}

/// <summary>A fixed pause after every batch (-Delay; none by default with an explicit pace).</summary>
internal sealed class FixedPacer(TimeSpan delay) : BackfillPacer
{
    public override Task<TimeSpan> AfterBatchAsync(TimeSpan batchElapsed, int transactions, CancellationToken ct) => SleepAsync(delay, ct);
}

/// <summary>
/// The adaptive throttle: reads the server's counters (<see cref="ServerActivitySampler"/>) in
/// windows of work and of pause, lets <see cref="DutyCycleController"/> decide the duty cycle, and
/// sleeps after each batch so that the backfill works that share of the time.
/// </summary>
internal sealed class AdaptivePacer : BackfillPacer
{
    /// <summary>The longest sleep between two batches at the smallest duty cycle.</summary>
    private static readonly TimeSpan MaxSleep = TimeSpan.FromSeconds(5);

    private readonly ThrottleSettings _settings;
    private readonly IMigrationObserver _observer;
    private readonly string _activity;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ServerActivitySampler _sampler;
    private readonly DutyCycleController _controller;
    private readonly List<OthersPoint> _window = new();
    private long _ownTransactions;
    private TimeSpan _ownActive;
    private TimeSpan _windowOpensAt;
    private TimeSpan _lastSampleAt;

    public AdaptivePacer(ThrottleSettings settings, ConnectionTarget target, IMigrationObserver observer, string activity)
    {
        _settings = settings;
        _observer = observer;
        _activity = activity;
        _sampler = new ServerActivitySampler(target, _clock);
        _controller = new DutyCycleController(settings);
    }

    public override async Task<TimeSpan> StartAsync(CancellationToken ct)
    {
        var started = _clock.Elapsed;
        _observer.Verbose(FormattableString.Invariant($"Backfill throttle: adaptive; the backfill may cost the other sessions at most {_settings.HarmLimit * 100:0.#}% of their throughput (Invoke-Backfill -MaxImpact)."));
        var paused = await MeasurePauseAsync(settle: false, ct).ConfigureAwait(false);
        Report(_controller.Start(paused, _clock.Elapsed));
        OpenWindow(settle: false);
        return _clock.Elapsed - started;
    }

    public override async Task<TimeSpan> AfterBatchAsync(TimeSpan batchElapsed, int transactions, CancellationToken ct)
    {
        _ownTransactions += transactions;
        _ownActive += batchElapsed;
        var paused = TimeSpan.Zero;
        var now = _clock.Elapsed;
        if (now >= _windowOpensAt && now - _lastSampleAt >= _settings.SampleEvery)
        {
            await SampleIntoWindowAsync(ct).ConfigureAwait(false);
        }

        if (_window.Count > 1 && _window[^1].At - _window[0].At >= _settings.WorkWindow)
        {
            var working = OthersActivity.Fit(_window);
            var dutyBefore = _controller.Duty;
            var decision = _controller.AfterWork(working, _clock.Elapsed);
            var probed = false;
            if (decision is null)
            {
                var probeStarted = _clock.Elapsed;
                var pause = await MeasurePauseAsync(settle: true, ct).ConfigureAwait(false);
                paused += _clock.Elapsed - probeStarted;
                decision = _controller.AfterProbe(working, pause, _clock.Elapsed);
                probed = true;
            }

            Report(decision);

            // A new regime (another duty cycle, or work after a pause) shows in the counters only
            // about a second later.
            OpenWindow(settle: probed || decision.Duty != dutyBefore);
        }

        var duty = _controller.Duty;
        if (duty < 1)
        {
            var sleep = TimeSpan.FromTicks(Math.Min(MaxSleep.Ticks, (long)(batchElapsed.Ticks * (1 - duty) / duty)));
            paused += await SleepAsync(sleep, ct).ConfigureAwait(false);
        }

        return paused;
    }

    public override ValueTask DisposeAsync() => _sampler.DisposeAsync();

    public override string? Describe()
        => _controller.Duty < 1 ? FormattableString.Invariant($"adaptive throttle: working {_controller.Duty:P0} of the time, to leave the server to the other sessions") : null;

    private async Task<OthersActivity> MeasurePauseAsync(bool settle, CancellationToken ct)
    {
        if (settle)
        {
            await Task.Delay(_settings.Settle, ct).ConfigureAwait(false);
        }

        var points = new List<OthersPoint>();
        var end = _clock.Elapsed + _settings.ProbeWindow;
        while (true)
        {
            points.Add(await SampleAsync(ct).ConfigureAwait(false));
            if (_clock.Elapsed >= end)
            {
                break;
            }

            await Task.Delay(_settings.SampleEvery, ct).ConfigureAwait(false);
        }

        return OthersActivity.Fit(points);
    }

    private async Task SampleIntoWindowAsync(CancellationToken ct)
    {
        _window.Add(await SampleAsync(ct).ConfigureAwait(false));
        _lastSampleAt = _clock.Elapsed;
    }

    private async Task<OthersPoint> SampleAsync(CancellationToken ct)
    {
        var sample = await _sampler.SampleAsync(ct).ConfigureAwait(false);
        _ownTransactions += ServerActivitySampler.OwnTransactionsPerSample;
        return OthersPoint.From(sample, _ownTransactions, _ownActive);
    }

    private void OpenWindow(bool settle)
    {
        _window.Clear();
        _windowOpensAt = _clock.Elapsed + (settle ? _settings.Settle : TimeSpan.Zero);
    }

    private void Report(ThrottleDecision decision)
    {
        _settings.OnDecision?.Invoke(decision);
        _observer.Verbose($"Backfill throttle: {decision}.");
        if (decision.Duty < 1)
        {
            _observer.Progress(new ProgressUpdate(_activity, FormattableString.Invariant($"throttled to {decision.Duty:P0} of the time: {decision}")));
        }
    }
}
