using ZeroDowntime.Bench.Workload;

namespace ZeroDowntime.Bench.Phases;

/// <summary>One DDL step as run: its lock, how many lock attempts it took and how long its transaction held the locks.</summary>
public sealed record StepReport(string Title, string Lock, int Attempts, double LockHeldMs);

/// <summary>
/// One migration phase as measured: how long it took, its steps, how many lock holders were
/// injected, and what the application saw meanwhile.
/// </summary>
public sealed record PhaseResult(
    string Name,
    long Rows,
    double Seconds,
    IReadOnlyList<StepReport> Steps,
    int LockInjections,
    double LockTimeoutMs,
    WindowStats? App)
{
    public const string AccessExclusive = "ACCESS EXCLUSIVE";

    /// <summary>The longest any ACCESS EXCLUSIVE step held its locks (0 when the phase has none).</summary>
    public double MaxAccessExclusiveMs => Steps.Where(s => s.Lock == AccessExclusive).Select(s => s.LockHeldMs).DefaultIfEmpty(0).Max();

    public int AccessExclusiveSteps => Steps.Count(s => s.Lock == AccessExclusive);

    public int Attempts => Steps.Sum(s => s.Attempts);
}
