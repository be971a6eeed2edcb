namespace ZeroDowntime.Engine.Backfill.Throttle;

/// <summary>
/// How much the others' rate over a window varies on its own, learnt while the backfill runs: the
/// relative variance of a one-second rate, so that a window of T seconds has that variance / T.
/// A saturated closed loop on a 2-core machine varies 11% between 2 s windows with nothing else
/// changing (pgbench, 8 clients, quiet machine), about twice the harm limit; comparing two such
/// windows without knowing that reads noise as harm (or as a gain).
/// <para>
/// The measure is two consecutive working windows at the same duty (a probe between them or not):
/// what separates a working window from the probe after it (counters published in steps, bursts,
/// drift over a few seconds; a probe between them makes it more drift, not less). Until
/// three such pairs are seen, the two halves of each window stand in (at least 10% per 2 s window
/// until there are two of them): they are always there, but
/// they overestimate, because every backend publishes its counters about once a second, so a 1 s
/// half holds a whole number of each session's steps (a light load of a few sessions read
/// 11% ± 86% on the demo). Both are exponentially weighted, so the estimate follows the server,
/// and both start again when the load changes (a rate that moves by more than
/// <see cref="LoadChangeFactor"/>): the noise of a burst says nothing about the load after it.
/// </para>
/// </summary>
internal sealed class RateNoise
{
    /// <summary>A rate that moves by more than this factor between two like windows is another load, not noise.</summary>
    public const double LoadChangeFactor = 2;

    /// <summary>
    /// Pairs of consecutive working windows needed before they replace the halves: one pair is one
    /// squared difference, which is near zero one time in four; the mean of three rarely is.
    /// </summary>
    private const int PairsToTrust = 3;

    /// <summary>
    /// Until this many halves are seen, the estimate is at least <see cref="PriorVariancePerSecond"/>:
    /// one half-window sample says almost nothing (a single squared difference); taken alone after
    /// the demo's burst, it read a light load's noise as ± 1% and throttled the backfill to 10% on
    /// a 7% "loss" of an open loop. By a first probe there are three (the first look, a working
    /// window, the probe); after a load change, one.
    /// </summary>
    private const int HalvesToTrust = 2;

    /// <summary>A 2 s window varying 10% on its own, as a saturated closed loop did on this machine.</summary>
    private const double PriorVariancePerSecond = 0.02;

    private readonly WeightedVariance _halves = new();
    private readonly WeightedVariance _pairs = new();
    private OthersActivity? _lastWorking;
    private double _lastWorkingDuty;
    private double? _lastPausedRate;

    /// <summary>The relative variance of a one-second rate.</summary>
    public double VariancePerSecond
        => _pairs.Count >= PairsToTrust ? _pairs.Value!.Value
            : _halves.Count >= HalvesToTrust ? _halves.Value!.Value
            : Math.Max(_halves.Value ?? 0, PriorVariancePerSecond);

    /// <summary>The two rates differ by more than <see cref="LoadChangeFactor"/> (either way).</summary>
    public static bool IsLoadChange(double rate, double other)
        => Math.Max(rate, other) > LoadChangeFactor * Math.Min(rate, other);

    public void ObservePaused(OthersActivity paused)
    {
        if (_lastPausedRate is { } last && IsLoadChange(last, paused.TransactionsPerSecond))
        {
            Forget();
        }

        _lastPausedRate = paused.TransactionsPerSecond;
        AddHalves(paused);
    }

    public void ObserveWorking(OthersActivity working, double duty)
    {
        if (_lastWorking is { } last && duty == _lastWorkingDuty && last.TransactionsPerSecond + working.TransactionsPerSecond > 0)
        {
            if (IsLoadChange(last.TransactionsPerSecond, working.TransactionsPerSecond))
            {
                Forget();
            }
            else
            {
                // Independent windows: var(difference) = 2 var(window), and var(window) = var(1 s) / T.
                var mean = (last.TransactionsPerSecond + working.TransactionsPerSecond) / 2;
                var difference = (working.TransactionsPerSecond - last.TransactionsPerSecond) / mean;
                _pairs.Add(difference * difference / 2 * ((last.Seconds + working.Seconds) / 2));
            }
        }

        AddHalves(working);
        _lastWorking = working;
        _lastWorkingDuty = duty;
    }

    /// <summary>The standard deviation of one harm measurement (1 - working / paused) from these two windows.</summary>
    public double HarmSigma(OthersActivity working, OthersActivity paused)
        => working.Seconds > 0 && paused.Seconds > 0
            ? Math.Sqrt(VariancePerSecond * ((1 / working.Seconds) + (1 / paused.Seconds)))
            : 0;

    private void AddHalves(OthersActivity window)
    {
        if (window.HalvesSpread is { } spread)
        {
            // Each half has twice the window's variance, so var(first - second) = 4 var(window).
            _halves.Add(spread * spread / 4 * window.Seconds);
        }
    }

    /// <summary>Another load: what was learnt about the old one's noise is dropped.</summary>
    private void Forget()
    {
        _halves.Clear();
        _pairs.Clear();
        _lastWorking = null;
    }

    /// <summary>
    /// An exponentially weighted mean of variance samples (about the last five count); the plain
    /// mean of the first ones, so that the first sample does not weigh for the next several.
    /// </summary>
    private sealed class WeightedVariance
    {
        private const double Weight = 0.2;

        public double? Value { get; private set; }

        public int Count { get; private set; }

        public void Add(double sample)
        {
            Count++;
            Value = Value is { } v ? v + (Math.Max(Weight, 1.0 / Count) * (sample - v)) : sample;
        }

        public void Clear()
        {
            Value = null;
            Count = 0;
        }
    }
}
