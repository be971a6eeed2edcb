namespace ZeroDowntime.Engine.Backfill.Throttle;

/// <summary>
/// The harms measured by probes at the current duty cycle, with their noise (<see cref="RateNoise"/>):
/// one probe on a noisy server says little, several at the same duty say more (the error of their
/// mean falls with their number). Each probe's error is taken from the noise as it is known now,
/// not as it was when the probe was taken: right after a load change the first probe's error is
/// the cautious prior's, and the next window that teaches the real noise should correct it.
/// Cleared when the duty or the load changes: the evidence was about another regime.
/// </summary>
internal sealed class HarmEvidence(RateNoise noise)
{
    private readonly List<(double Harm, OthersActivity Working, OthersActivity Paused)> _probes = new();

    public int Count => _probes.Count;

    public double Mean => _probes.Count == 0 ? 0 : _probes.Average(p => p.Harm);

    /// <summary>The standard error of <see cref="Mean"/>: sqrt(sum of variances) / n.</summary>
    public double StandardError
        => _probes.Count == 0 ? 0 : Math.Sqrt(_probes.Sum(p => Math.Pow(noise.HarmSigma(p.Working, p.Paused), 2))) / _probes.Count;

    public void Add(double harm, OthersActivity working, OthersActivity paused) => _probes.Add((harm, working, paused));

    public void Clear() => _probes.Clear();

    /// <summary>The others lose more than <paramref name="limit"/>, and more than noise explains.</summary>
    public bool ShowsHarmAbove(double limit, double confidence)
        => Mean > limit && Mean > confidence * StandardError;

    /// <summary>The others lose less than <paramref name="limit"/>, with this confidence.</summary>
    public bool ShowsNoHarmAbove(double limit, double confidence)
        => Mean + (confidence * StandardError) < limit;
}
