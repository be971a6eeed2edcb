using System.Globalization;
using System.Text;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Workload;

namespace ZeroDowntime.Bench.Reporting;

/// <summary>Renders a run's results as the Markdown file a DBA reads: targets first, then each measurement with what it means.</summary>
public sealed class MarkdownReport
{
    private readonly BenchResults _r;

    public MarkdownReport(BenchResults results)
    {
        _r = results;
    }

    public TextTable TargetsTable()
    {
        var table = new TextTable("Item", "Target", "Measured", "Verdict");
        foreach (var t in _r.Targets)
        {
            table.Add(t.Item, t.Target, t.Measured, t.Pass switch { true => "PASS", false => "FAIL", null => "-" });
        }

        return table;
    }

    public string Render()
    {
        var run = _r.Run;
        var sb = new StringBuilder();
        sb.Append($"# ZeroDowntime bench: {run.Name}\n\n");
        sb.Append("Every ratio below compares two figures measured in this same run (the machines are noisy: absolute times are context, not results).\n\n");
        sb.Append(new TextTable("Run", "")
            .Add("Command", $"`{run.Command}`")
            .Add("Rows", Fmt.Count(run.Rows))
            .Add("Started (UTC)", run.StartedAt.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture))
            .Add("Duration", Fmt.Seconds(run.DurationSeconds))
            .Add("Commit", run.Commit)
            .Add("Machine", run.Machine)
            .Add("Server", run.Server)
            .Add("Engine", $"lock_timeout {Fmt.Ms(run.LockTimeoutMs)}; injected lock holders keep ACCESS SHARE for {Fmt.Seconds(run.LockHoldSeconds)}")
            .Add("Application", run.Workload)
            .ToMarkdown());

        sb.Append("\n## Targets\n\n").Append(TargetsTable().ToMarkdown());
        Backfill(sb);
        Throttle(sb);
        Ddl(sb);
        View(sb);
        Trigger(sb);
        Parity(sb);
        if (_r.Notes.Count > 0)
        {
            sb.Append("\n## Notes\n\n");
            foreach (var note in _r.Notes)
            {
                sb.Append("- ").Append(note).Append('\n');
            }
        }

        return sb.ToString();
    }

    private void Backfill(StringBuilder sb)
    {
        if (_r.BackfillThroughput is not { } b)
        {
            return;
        }

        sb.Append("\n## 1. Backfill throughput\n\n");
        sb.Append("Two identical tables, both expanded by the engine (new column, sync trigger, copy of the address index), autovacuum off on both, no application. ");
        sb.Append("One is filled by the engine's batched backfill, the other by a single `UPDATE t SET billing_address = address`, the fastest a copy can go (and the one nobody can run in production: it locks every row until it commits).\n\n");
        sb.Append(new TextTable("Method", ">Rows", ">Time", ">Rows/s")
            .Add("one UPDATE (reference)", Fmt.Count(b.Rows), Fmt.Seconds(b.UpdateSeconds), Fmt.Count(b.UpdateRowsPerSecond))
            .Add($"engine backfill ({b.EngineSettings})", Fmt.Count(b.Rows), Fmt.Seconds(b.EngineSeconds), Fmt.Count(b.EngineRowsPerSecond))
            .ToMarkdown());
        sb.Append($"\nEngine / UPDATE: **{Fmt.Ratio(b.Ratio)}** (target >= 0.90).\n");
    }

    private void Throttle(StringBuilder sb)
    {
        if (_r.Throttle is not { } t)
        {
            return;
        }

        var b = t.Baseline;
        sb.Append($"\n## 2. The application during the backfill ({Fmt.Count(t.Rows)} rows)\n\n");
        sb.Append("The application (open loop: it offers the same load whatever happens, as real traffic does) first runs without any migration (baseline), then while the backfill runs for one window per setting. ");
        sb.Append("*Tx/s vs baseline* is the throughput it achieved, *slowest second* the worst complete second as a share of the baseline's average, *zero seconds* the seconds in which no statement completed (a stall), ");
        sb.Append("*longest wait* the slowest single statement. An application write that hits a row inside the batch being written waits for that batch to commit, so the longest wait follows TargetBatchTime.\n\n");
        var table = new TextTable("Setting", ">TargetBatchTime", ">Delay", ">Backfill rows/s", ">Tx/s", ">vs baseline", ">Slowest second", ">Zero seconds", ">p99", ">p99 vs baseline", ">Longest wait", ">Errors");
        table.Add("baseline (no migration)", "-", "-", "-", Fmt.Count(b.Tps), "100%", Pct(b.MinSecondRatio(b)), Int(b.ZeroSeconds), Fmt.Ms(b.P99Ms), "1.0x", Fmt.Ms(b.MaxMs), Int(b.Errors));
        foreach (var run in t.Runs)
        {
            var a = run.App;
            table.Add(run.Setting.Label, Fmt.Ms(run.Setting.TargetBatchTimeMs), Fmt.Ms(run.Setting.DelayMs), Fmt.Count(run.RowsPerSecond), Fmt.Count(a.Tps), Fmt.Percent(a.TpsRatio(b)), Pct(a.MinSecondRatio(b)), Int(a.ZeroSeconds), Fmt.Ms(a.P99Ms), Fmt.Times(a.P99Ratio(b)), Fmt.Ms(a.MaxMs), Int(a.Errors));
        }

        if (t.BaselineAfter is { } after)
        {
            table.Add("baseline after (no migration)", "-", "-", "-", Fmt.Count(after.Tps), Fmt.Percent(after.TpsRatio(b)), Pct(after.MinSecondRatio(b)), Int(after.ZeroSeconds), Fmt.Ms(after.P99Ms), Fmt.Times(after.P99Ratio(b)), Fmt.Ms(after.MaxMs), Int(after.Errors));
        }

        sb.Append(table.ToMarkdown());
        sb.Append("\nPer-second throughput as % of the baseline's average, one number per complete second:\n\n```\n");
        sb.Append($"{"baseline",-30} {Series(b, b)}\n");
        foreach (var run in t.Runs)
        {
            sb.Append($"{run.Setting.Label,-30} {Series(run.App, b)}\n");
        }

        sb.Append("```\n");
        AppendErrors(sb, t.Runs.Select(r => r.App).Prepend(b));
    }

    private void Ddl(StringBuilder sb)
    {
        if (_r.Ddl.Count == 0)
        {
            return;
        }

        sb.Append("\n## 3. DDL phases with a long transaction in the way\n\n");
        sb.Append($"Right before every ACCESS EXCLUSIVE step, a session takes ACCESS SHARE on the table (what any SELECT takes) and keeps its transaction open for {Fmt.Seconds(_r.Run.LockHoldSeconds)}. ");
        sb.Append("A naive `ALTER TABLE` would queue behind it and every application statement behind the ALTER: a stall as long as the holder. ");
        sb.Append("The engine gives up after lock_timeout, waits, and tries again, so the application waits at most about lock_timeout per attempt. ");
        sb.Append("*ACCESS EXCLUSIVE held* is StepResult.LockHeldFor of the step's successful attempt (the engine's verbose report): from its first statement to its commit, which includes any time that attempt still waited for the lock.\n\n");
        var table = new TextTable(">Rows", "Phase", ">Time", ">AE steps", ">Lock holders", ">Lock retries", ">AE held (max)", ">App longest wait", ">Baseline longest", ">App p99", ">Zero seconds", ">Errors");
        foreach (var size in _r.Ddl)
        {
            foreach (var p in size.Phases)
            {
                var a = p.App;
                table.Add(Fmt.Count(size.Rows), p.Name, Fmt.Seconds(p.Seconds), Int(p.AccessExclusiveSteps), Int(p.LockInjections), Int(p.Attempts - p.Steps.Count), Fmt.Ms(p.MaxAccessExclusiveMs),
                    a is null ? "-" : Fmt.Ms(a.MaxMs), Fmt.Ms(size.Baseline.MaxMs), a is null ? "-" : Fmt.Ms(a.P99Ms), a is null ? "-" : Int(a.ZeroSeconds), a is null ? "-" : Int(a.Errors));
            }
        }

        sb.Append(table.ToMarkdown());
        sb.Append("\nEvery step (AE = ACCESS EXCLUSIVE; other steps do not block the application):\n\n");
        var steps = new TextTable(">Rows", "Phase", "Step", "Lock", ">Attempts", ">Transaction");
        foreach (var size in _r.Ddl)
        {
            foreach (var p in size.Phases)
            {
                foreach (var s in p.Steps)
                {
                    steps.Add(Fmt.Count(size.Rows), p.Name, s.Title, s.Lock, Int(s.Attempts), Fmt.Ms(s.LockHeldMs));
                }
            }
        }

        sb.Append(steps.ToMarkdown());
        AppendErrors(sb, _r.Ddl.SelectMany(d => d.Phases).Select(p => p.App).OfType<WindowStats>());
    }

    private void View(StringBuilder sb)
    {
        if (_r.ViewStrategy is not { } v)
        {
            return;
        }

        sb.Append("\n## 4. View strategy expand\n\n");
        if (!v.Available)
        {
            sb.Append($"Not available: {v.Reason}\n");
            return;
        }

        sb.Append("The column is served under its new name by a view in a version schema: no copy, no trigger. The expand's cost must not grow with the table.\n\n");
        var table = new TextTable(">Rows", ">Expand time", ">Steps", "Strongest lock", ">Longest step transaction");
        foreach (var e in v.Expands)
        {
            table.Add(Fmt.Count(e.Rows), Fmt.Seconds(e.Seconds), Int(e.Steps), e.StrongestLock, Fmt.Ms(e.LongestTransactionMs));
        }

        sb.Append(table.ToMarkdown());
    }

    private void Trigger(StringBuilder sb)
    {
        if (_r.TriggerCost is not { } t)
        {
            return;
        }

        sb.Append($"\n## 5. The sync trigger's cost on application writes ({Fmt.Count(t.Rows)} rows)\n\n");
        sb.Append($"{t.Workload}, closed loop (capacity, not a fixed load), {t.Variants[0].RoundsTps.Count} interleaved rounds of {Fmt.Seconds(t.RoundSeconds)} per variant; the median round counts. ");
        sb.Append("*Trigger off* is the expanded table with the trigger disabled: the difference to *no migration* is the new column's index, the difference to *v1 writes* the trigger itself.\n\n");
        var plain = t.Variants[0].MedianTps;
        var table = new TextTable("Variant", ">Writes/s (median)", ">vs no migration", "Rounds", "What");
        foreach (var v in t.Variants)
        {
            table.Add(v.Label, Fmt.Count(v.MedianTps), Fmt.Percent(v.MedianTps / plain), string.Join(", ", v.RoundsTps.Select(x => Fmt.Count(x))), v.Description);
        }

        sb.Append(table.ToMarkdown());
    }

    private void Parity(StringBuilder sb)
    {
        if (_r.ParityRate is not { } p)
        {
            return;
        }

        sb.Append("\n## 6. Parity check rate\n\n");
        sb.Append("On the backfilled table of item 1, cached alike for both (one unmeasured count first): the engine's Test-ColumnParity, which walks the key in ranges of plain read-only statements (no long snapshot holding back vacuum), against one `SELECT count(*) ... WHERE address IS DISTINCT FROM billing_address`.\n\n");
        sb.Append(new TextTable("Method", ">Rows", ">Mismatches", ">Time", ">Rows/s")
            .Add("one count(*) (reference)", Fmt.Count(p.Rows), "-", Fmt.Seconds(p.CountSeconds), Fmt.Count(p.CountRowsPerSecond))
            .Add("one count(*) without parallel workers", Fmt.Count(p.Rows), "-", Fmt.Seconds(p.SerialCountSeconds), Fmt.Count(p.SerialCountRowsPerSecond))
            .Add("engine parity check", Fmt.Count(p.Rows), Fmt.Count(p.Mismatches), Fmt.Seconds(p.EngineSeconds), Fmt.Count(p.EngineRowsPerSecond))
            .ToMarkdown());
        sb.Append($"\nEngine / count: **{Fmt.Ratio(p.Ratio)}** ({Fmt.Ratio(p.SerialRatio)} against the count without parallel workers).\n");
    }

    private static void AppendErrors(StringBuilder sb, IEnumerable<WindowStats> windows)
    {
        var errors = windows.Where(w => w.Errors > 0).ToList();
        if (errors.Count == 0)
        {
            return;
        }

        sb.Append("\nApplication errors:\n\n");
        foreach (var w in errors)
        {
            sb.Append($"- {w.Name}: {string.Join("; ", w.ErrorSamples)}\n");
        }
    }

    private static string Series(WindowStats window, WindowStats baseline)
        => baseline.Tps <= 0 ? "" : string.Join(' ', window.PerSecond.Select(n => (n / baseline.Tps * 100).ToString("0", CultureInfo.InvariantCulture)));

    private static string Pct(double? ratio) => ratio is { } r ? Fmt.Percent(r) : "-";

    private static string Int(long n) => n.ToString(CultureInfo.InvariantCulture);
}
