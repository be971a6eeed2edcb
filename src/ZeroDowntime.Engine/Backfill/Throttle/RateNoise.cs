namespace ZeroDowntime.Engine.Backfill.Throttle;

/// <summary>
/// How much the others' rate over a window varies on its own, learnt while the backfill runs: the
/// relative variance of a one-second rate, so that a window of T seconds has that variance / T.
/// A saturated closed loop on a 2-core machine varies 11% between 2 s windows with nothing else
/// changing (pgbench, 8 clients, quiet machine), about twice the harm limit; comparing two such
/// windows without knowing that reads noise as harm (or as a gain).
/// Two kinds of samples feed it, both exponentially weighted so that the estimate follows the server:
/// the two halves of every window (short-term noise: counters published in steps, bursts), and two
/// adjacent working windows at the same duty (what also drifts over a few seconds, which is what
/// separates a working window from the probe after it).
/// </summary>
internal sealed class RateNoise
{
    /// <summary>The weight of a new sample: about the last five count.</summary>
    private const double Weight = 0.2;

    private double? _variancePerSecond;
    private OthersActivity? _lastWorking;
    private double _lastWorkingDuty;

    /// <summary>The relative variance of a one-second rate; null until a first sample.</summary>
    public double? VariancePerSecond => _variancePerSecond;

    public void ObservePaused(OthersActivity paused) => AddHalves(paused);

    public void ObserveWorking(OthersActivity working, double duty)
    {
        AddHalves(working);
        if (_lastWorking is { } last && last.TransactionsPerSecond + working.TransactionsPerSecond > 0 && duty == _lastWorkingDuty)
        {
            // Independent windows: var(difference) = 2 var(window), and var(window) = var(1 s) / T.
            var mean = (last.TransactionsPerSecond + working.TransactionsPerSecond) / 2;
            var difference = (working.TransactionsPerSecond - last.TransactionsPerSecond) / mean;
            Add(difference * difference / 2 * ((last.Seconds + working.Seconds) / 2));
        }

        _lastWorking = working;
        _lastWorkingDuty = duty;
    }

    /// <summary>A probe lies between the last working window and the next: they are not adjacent.</summary>
    public void Interrupt() => _lastWorking = null;

    /// <summary>
    /// The standard deviation of one harm measurement (1 - working / paused) from these two windows;
    /// 0 while nothing is known (the controller then judges the harm as measured).
    /// </summary>
    public double HarmSigma(OthersActivity working, OthersActivity paused)
        => _variancePerSecond is { } v && working.Seconds > 0 && paused.Seconds > 0
            ? Math.Sqrt(v * ((1 / working.Seconds) + (1 / paused.Seconds)))
            : 0;

    private void AddHalves(OthersActivity window)
    {
        if (window.HalvesSpread is { } spread)
        {
            // Each half has twice the window's variance, so var(first - second) = 4 var(window).
            Add(spread * spread / 4 * window.Seconds);
        }
    }

    private void Add(double variancePerSecond)
        => _variancePerSecond = _variancePerSecond is { } v ? v + (Weight * (variancePerSecond - v)) : variancePerSecond;
}
