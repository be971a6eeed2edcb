using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Workload;

namespace ZeroDowntime.Bench.Reporting;

/// <summary>
/// Everything one bench run measured, as written to bench/results/NAME.json (and rendered to
/// NAME.md). Every ratio compares two figures measured in the same run, never across runs.
/// </summary>
public sealed class BenchResults
{
    public required RunInfo Run { get; set; }

    public BackfillThroughputResult? BackfillThroughput { get; set; }

    public ParityRateResult? ParityRate { get; set; }

    public ThrottleCurveResult? Throttle { get; set; }

    public List<DdlSizeResult> Ddl { get; } = new();

    public ViewStrategyResult? ViewStrategy { get; set; }

    public TriggerCostResult? TriggerCost { get; set; }

    /// <summary>Each target of the issue, measured or not, with its verdict.</summary>
    public List<TargetCheck> Targets { get; } = new();

    public List<string> Notes { get; } = new();
}

public sealed record RunInfo(
    string Name,
    DateTimeOffset StartedAt,
    double DurationSeconds,
    long Rows,
    string Command,
    string Commit,
    string Machine,
    string Server,
    double LockTimeoutMs,
    double LockHoldSeconds,
    string Workload);

/// <summary>Item 1: the engine's backfill against one UPDATE over an identical table, both with the sync trigger and the new column's index.</summary>
public sealed record BackfillThroughputResult(
    long Rows,
    string EngineSettings,
    double EngineSeconds,
    double EngineRowsPerSecond,
    int? EngineBatches,
    double UpdateSeconds,
    double UpdateRowsPerSecond)
{
    public double Ratio => UpdateRowsPerSecond > 0 ? EngineRowsPerSecond / UpdateRowsPerSecond : 0;
}

/// <summary>Item 6: the engine's parity check against one plain count of mismatching rows.</summary>
public sealed record ParityRateResult(long Rows, long Mismatches, double EngineSeconds, double EngineRowsPerSecond, double CountSeconds, double CountRowsPerSecond, double SerialCountSeconds, double SerialCountRowsPerSecond)
{
    /// <summary>Against a count without parallel workers: the engine's scan is one process too.</summary>
    public double SerialRatio => SerialCountRowsPerSecond > 0 ? EngineRowsPerSecond / SerialCountRowsPerSecond : 0;

    public double Ratio => CountRowsPerSecond > 0 ? EngineRowsPerSecond / CountRowsPerSecond : 0;
}

/// <summary>One backfill throttle setting, run for a window while the application runs.</summary>
/// <param name="Adaptive">The engine's default pace (the adaptive throttle); false for an explicit pace, as Invoke-Backfill passes when one is given.</param>
public sealed record ThrottleSetting(string Label, double TargetBatchTimeMs, double DelayMs, bool Adaptive = false);

public sealed record ThrottleRun(ThrottleSetting Setting, double BackfillSeconds, long RowsBackfilled, double RowsPerSecond, WindowStats App);

/// <summary>Item 2: the application during backfills at several throttles against its no-migration baseline.</summary>
public sealed record ThrottleCurveResult(long Rows, WindowStats Baseline, IReadOnlyList<ThrottleRun> Runs, WindowStats? BaselineAfter);

/// <summary>Item 3 at one table size: every DDL phase with a lock holder injected, and the baseline to compare with.</summary>
public sealed record DdlSizeResult(long Rows, WindowStats Baseline, IReadOnlyList<PhaseResult> Phases);

/// <summary>One view-strategy expand: its strongest lock and the longest any of its step transactions held its locks.</summary>
public sealed record ViewExpand(long Rows, double Seconds, int Steps, string StrongestLock, double LongestTransactionMs, double MaxAccessExclusiveMs);

/// <summary>Item 4: the view strategy's expand, or why it could not be measured.</summary>
public sealed record ViewStrategyResult(bool Available, string? Reason, IReadOnlyList<ViewExpand> Expands);

public sealed record TriggerVariant(string Label, string Description, IReadOnlyList<double> RoundsTps)
{
    public double MedianTps
    {
        get
        {
            var sorted = RoundsTps.Order().ToList();
            return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
        }
    }
}

/// <summary>Item 5: write throughput (closed loop, writes only) with and without the sync trigger, interleaved rounds.</summary>
public sealed record TriggerCostResult(long Rows, string Workload, double RoundSeconds, IReadOnlyList<TriggerVariant> Variants);

/// <summary>One target from the issue: what was measured against what was asked.</summary>
public sealed record TargetCheck(string Item, string Target, string Measured, bool? Pass);
