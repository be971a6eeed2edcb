using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Scenarios;

namespace ZeroDowntime.Bench.Reporting;

/// <summary>Checks the measurements against the targets of the issue; a target whose figure was not measured is listed as such.</summary>
public static class TargetEvaluator
{
    /// <summary>What "a few ms" over lock_timeout is allowed to be on a noisy 2-core machine.</summary>
    public const double LockWaitToleranceMs = 30;

    public const double MaxAccessExclusiveMs = 50;

    public static void Evaluate(BenchResults results, double lockTimeoutMs)
    {
        var targets = results.Targets;
        if (results.BackfillThroughput is { } bf)
        {
            targets.Add(new TargetCheck("1. Backfill throughput", "engine rows/s >= 0.9 x one UPDATE", $"{Fmt.Ratio(bf.Ratio)} ({Fmt.Rate(bf.EngineRowsPerSecond, "rows")} vs {Fmt.Rate(bf.UpdateRowsPerSecond, "rows")})", bf.Ratio >= 0.9));
        }

        var full = results.Throttle?.Runs.FirstOrDefault(r => r.Setting.Label == BenchOptions.FullSpeedLabel);
        if (full is not null)
        {
            var app = full.App;
            targets.Add(new TargetCheck("2. Backfill at full speed", "no second at zero throughput", $"{app.ZeroSeconds} zero seconds of {app.PerSecond.Count}", app.ZeroSeconds == 0 && app.PerSecond.Count > 0));
            targets.Add(new TargetCheck("2. Backfill at full speed", "no statement waits > 250 ms", $"longest {Fmt.Ms(app.MaxMs)}", app.MaxMs <= 250));
        }

        if (results.Throttle is { } curve && curve.Runs.FirstOrDefault(r => r.Setting.Label == BenchOptions.DefaultsLabel) is { } defaults)
        {
            var app = defaults.App;
            var min = app.MinSecondRatio(curve.Baseline);
            if (full is not null && full.RowsPerSecond > 0)
            {
                // The throttle must not slow down a backfill that hurts nobody (an open loop below capacity).
                var share = defaults.RowsPerSecond / full.RowsPerSecond;
                targets.Add(new TargetCheck("2. Backfill at the default throttle", "rows/s >= 0.8 x full speed (throttle off)", $"{Fmt.Ratio(share)} ({Fmt.Rate(defaults.RowsPerSecond, "rows")} vs {Fmt.Rate(full.RowsPerSecond, "rows")})", share >= 0.8));
            }

            targets.Add(new TargetCheck("2. Backfill at the default throttle", "every second >= 80% of baseline throughput", min is { } m ? $"slowest second {Fmt.Percent(m)}" : "window too short", min >= 0.8));
            targets.Add(new TargetCheck("2. Backfill at the default throttle", "no statement > 100 ms", $"longest {Fmt.Ms(app.MaxMs)}", app.MaxMs <= 100));
            targets.Add(new TargetCheck("2. Backfill at the default throttle", "zero application errors", $"{app.Errors} errors", app.Errors == 0));
        }

        foreach (var size in results.Ddl)
        {
            var worstWait = size.Phases.Where(p => p.App is not null).MaxBy(p => p.App!.MaxMs);
            var worstHold = size.Phases.MaxBy(p => p.MaxAccessExclusiveMs);
            var errors = size.Phases.Sum(p => p.App?.Errors ?? 0);
            var stalls = size.Phases.Sum(p => p.App?.ZeroSeconds ?? 0);
            var rows = Fmt.Count(size.Rows);
            if (worstWait is not null)
            {
                targets.Add(new TargetCheck(
                    $"3. DDL phases at {rows} rows, lock holder injected",
                    $"longest application wait <= lock_timeout + {LockWaitToleranceMs:0} ms ({Fmt.Ms(lockTimeoutMs + LockWaitToleranceMs)}), no stalled second, no error",
                    $"{Fmt.Ms(worstWait.App!.MaxMs)} ({worstWait.Name}); {stalls} stalled seconds; {errors} errors",
                    worstWait.App.MaxMs <= lockTimeoutMs + LockWaitToleranceMs && stalls == 0 && errors == 0));
            }

            if (worstHold is not null)
            {
                targets.Add(new TargetCheck(
                    $"3. DDL phases at {rows} rows, lock holder injected",
                    $"ACCESS EXCLUSIVE held < {MaxAccessExclusiveMs:0} ms",
                    $"{Fmt.Ms(worstHold.MaxAccessExclusiveMs)} ({worstHold.Name})",
                    worstHold.MaxAccessExclusiveMs < MaxAccessExclusiveMs));
            }
        }

        if (results.ViewStrategy is { } view)
        {
            targets.Add(view.Available
                ? new TargetCheck("4. View strategy expand", $"locks held < {MaxAccessExclusiveMs:0} ms at every size (a catalog change)", string.Join(", ", view.Expands.Select(e => $"{Fmt.Count(e.Rows)} rows: {e.StrongestLock} for {Fmt.Ms(e.LongestTransactionMs)}")), view.Expands.Count > 0 && view.Expands.All(e => e.LongestTransactionMs < MaxAccessExclusiveMs))
                : new TargetCheck("4. View strategy expand", "measured at 10 thousand and 10 million rows", "not available in this engine build", null));
        }

        if (results.TriggerCost is { Variants.Count: > 2 } trigger)
        {
            var plain = trigger.Variants[0].MedianTps;
            var off = trigger.Variants[1].MedianTps;
            var on = trigger.Variants[2].MedianTps;
            targets.Add(new TargetCheck("5. Sync trigger cost on writes", "reported (no target)", $"writes/s with trigger {Fmt.Percent(on / off)} of trigger off; {Fmt.Percent(on / plain)} of no migration", null));
        }

        if (results.ParityRate is { } parity)
        {
            targets.Add(new TargetCheck("6. Parity check rate", "reported (no target)", $"{Fmt.Ratio(parity.Ratio)} x a plain count ({Fmt.Rate(parity.EngineRowsPerSecond, "rows")} vs {Fmt.Rate(parity.CountRowsPerSecond, "rows")}); {Fmt.Ratio(parity.SerialRatio)} x one without parallel workers", null));
        }
    }
}
