using System.Text.Json.Serialization;

namespace ZeroDowntime.Bench.Workload;

/// <summary>
/// What the application saw during one window: successful statements, errors, latency (p50, p99,
/// max) and the per-second throughput of the complete seconds inside the window. Latency counts
/// successful statements only; a failed one is an error whatever its duration.
/// </summary>
public sealed record WindowStats(
    string Name,
    double Seconds,
    long Operations,
    long Errors,
    double P50Ms,
    double P99Ms,
    double MaxMs,
    IReadOnlyList<int> PerSecond,
    IReadOnlyList<string> ErrorSamples)
{
    public double Tps => Seconds > 0 ? Operations / Seconds : 0;

    /// <summary>The slowest complete second, or null when the window is shorter than two seconds.</summary>
    public int? MinSecond => PerSecond.Count == 0 ? null : PerSecond.Min();

    /// <summary>Complete seconds in which no statement completed: a stall.</summary>
    public int ZeroSeconds => PerSecond.Count(n => n == 0);

    [JsonIgnore]
    public bool HasErrors => Errors > 0;

    /// <summary>Throughput as a share of the baseline's (1.0 = the same).</summary>
    public double TpsRatio(WindowStats baseline) => baseline.Tps > 0 ? Tps / baseline.Tps : 0;

    /// <summary>The slowest complete second as a share of the baseline's average throughput.</summary>
    public double? MinSecondRatio(WindowStats baseline) => MinSecond is { } min && baseline.Tps > 0 ? min / baseline.Tps : null;

    /// <summary>
    /// The share of complete seconds below <paramref name="ratio"/> of the baseline's average: on a
    /// noisy machine the baseline has such seconds too, and this says whether a run has more.
    /// </summary>
    public double? ShareOfSecondsBelow(WindowStats baseline, double ratio)
        => PerSecond.Count == 0 || baseline.Tps <= 0 ? null : PerSecond.Count(n => n < ratio * baseline.Tps) / (double)PerSecond.Count;

    public double P99Ratio(WindowStats baseline) => baseline.P99Ms > 0 ? P99Ms / baseline.P99Ms : 0;
}
