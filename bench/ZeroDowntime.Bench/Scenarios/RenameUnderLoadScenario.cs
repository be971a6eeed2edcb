using System.Diagnostics;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Reporting;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Planning;
using static ZeroDowntime.Engine.Sql.Ident;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>
/// Items 2 and 3 on one table while the application runs: a no-migration baseline; the column
/// rename's expand with a lock holder in front of each ACCESS EXCLUSIVE step; optionally the
/// backfill at several throttles, each for a window; parity; the rollout from v1 to v2; the
/// contract (lock holder again); a second baseline; then a table rename's expand and contract
/// (lock holder again) while the application moves to the new table name.
/// </summary>
public sealed class RenameUnderLoadScenario
{
    private readonly BenchContext _ctx;
    private readonly long _rows;
    private readonly WorkloadOptions _workload;
    private readonly TimeSpan _window;
    private readonly IReadOnlyList<ThrottleSetting>? _throttles;
    private readonly List<PhaseResult> _phases = new();

    /// <param name="throttles">The backfill settings to measure, gentlest first; null to just backfill at full speed.</param>
    public RenameUnderLoadScenario(BenchContext ctx, long rows, WorkloadOptions workload, TimeSpan window, IReadOnlyList<ThrottleSetting>? throttles)
    {
        _ctx = ctx;
        _rows = rows;
        _workload = workload with { IdRange = rows };
        _window = window;
        _throttles = throttles;
    }

    private ConsoleUi Ui => _ctx.Ui;

    public async Task<(DdlSizeResult Ddl, ThrottleCurveResult? Throttle)> RunAsync()
    {
        var ct = _ctx.Cancellation;
        Ui.Line($"== Rename under load: {Fmt.Count(_rows)} rows, application {_workload.Describe()} ==");
        var table = await _ctx.CreateOrdersAsync(TableName(_rows), _rows);
        var recorder = new WorkloadRecorder();
        var phases = _ctx.Phases(recorder);
        var v1 = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("v1", table.Qualified, Quote(OrdersTable.OldColumn)), _workload, recorder);
        var running = new List<AppSimulator> { v1 };
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(3), ct); // connections, JIT, caches
            var baseline = await MeasureAsync("baseline", recorder, _window, null);

            var expandPlan = await _ctx.Engine.PlanColumnRenameAsync(new ColumnRenameRequest(table.Schema, table.Name, OrdersTable.OldColumn, OrdersTable.NewColumn), ct);
            var migration = await RunPhaseAsync(phases, "column rename: expand", expandPlan, recorder, baseline);

            List<ThrottleRun>? runs = null;
            if (_throttles is not null)
            {
                runs = new List<ThrottleRun>();
                foreach (var setting in _throttles)
                {
                    migration = await BackfillRestart.EnsureRowsToBackfillAsync(_ctx, phases, migration, table, "throttle");
                    runs.Add(await BackfillWindowAsync(migration.Id, setting, recorder, baseline));
                }
            }

            await FinishBackfillAsync(migration.Id, recorder, baseline);
            var parity = await _ctx.Engine.TestColumnParityAsync(migration.Id, ct);
            Ui.Line($"[parity] {Fmt.Count(parity.Mismatches)} mismatches in {Fmt.Count(parity.RowsChecked)} rows");

            // The rollout: v2 takes over the traffic, then v1 is gone before the old column is.
            var v2 = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("v2", table.Qualified, Quote(OrdersTable.NewColumn)), _workload with { Seed = 7 }, recorder);
            running.Add(v2);
            await v1.StopAsync();
            running.Remove(v1);
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            await RunPhaseAsync(phases, "column rename: contract", await _ctx.Engine.PlanContractAsync(migration.Id, ct), recorder, baseline);

            // No migration any more: a second baseline shows how much the machine drifted meanwhile.
            var after = await MeasureAsync("baseline after", recorder, _window / 2, baseline);

            var newName = table.Name + "_renamed";
            var renamePlan = await _ctx.Engine.PlanTableRenameAsync(new TableRenameRequest(table.Schema, table.Name, newName), ct);
            var rename = await RunPhaseAsync(phases, "table rename: expand", renamePlan, recorder, baseline);
            var v3 = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("v3", Qualify(table.Schema, newName), Quote(OrdersTable.NewColumn)), _workload with { Seed = 11 }, recorder);
            running.Add(v3);
            await v2.StopAsync();
            running.Remove(v2);
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            await RunPhaseAsync(phases, "table rename: contract", await _ctx.Engine.PlanContractAsync(rename.Id, ct), recorder, baseline);

            var throttle = runs is null ? null : new ThrottleCurveResult(_rows, baseline, runs, after);
            return (new DdlSizeResult(_rows, baseline, _phases.ToList()), throttle);
        }
        finally
        {
            foreach (var app in running)
            {
                await app.DisposeAsync();
            }

            await Sql.ExecuteAsync(_ctx.Admin, $"DROP VIEW IF EXISTS {table.Qualified}; DROP TABLE IF EXISTS {table.Qualified}, {Qualify(table.Schema, table.Name + "_renamed")} CASCADE", CancellationToken.None);
        }
    }

    public static string TableName(long rows) => rows switch
    {
        >= 1_000_000 when rows % 1_000_000 == 0 => $"orders_{rows / 1_000_000}m",
        >= 1_000 when rows % 1_000 == 0 => $"orders_{rows / 1_000}k",
        _ => $"orders_{rows}",
    };

    private async Task<WindowStats> MeasureAsync(string name, WorkloadRecorder recorder, TimeSpan length, WindowStats? baseline)
    {
        var window = recorder.BeginWindow(name);
        await using (Ui.Status(() => $"[{name}] {AppStatus.LastSecond(recorder, baseline)}"))
        {
            await Task.Delay(length, _ctx.Cancellation);
        }

        var stats = window.End();
        Ui.Line($"[{name}] {Fmt.Seconds(stats.Seconds)}: {Fmt.Count(stats.Tps)} tx/s, p99 {Fmt.Ms(stats.P99Ms)}, longest wait {Fmt.Ms(stats.MaxMs)}, {stats.Errors} errors");
        return stats;
    }

    private async Task<ZeroDowntime.Engine.Migration> RunPhaseAsync(PhaseRunner phases, string name, PhasePlan plan, WorkloadRecorder recorder, WindowStats baseline)
    {
        (ZeroDowntime.Engine.Migration Migration, PhaseResult Result) outcome;
        await using (Ui.Status(() => $"[{name}] {plan.Steps.Count} step(s) | {AppStatus.LastSecond(recorder, baseline)}"))
        {
            outcome = await phases.RunAsync(name, _rows, plan, injectLocks: true, _ctx.Cancellation);
        }

        var r = outcome.Result;
        _phases.Add(r);
        Ui.Line($"[{name}] {Fmt.Seconds(r.Seconds)}, {r.Steps.Count} steps, {r.LockInjections} lock holder(s), {r.Attempts - r.Steps.Count} lock retries; "
            + $"ACCESS EXCLUSIVE held at most {Fmt.Ms(r.MaxAccessExclusiveMs)}; app longest wait {Fmt.Ms(r.App!.MaxMs)}, {r.App.Errors} errors");
        return outcome.Migration;
    }

    private async Task<ThrottleRun> BackfillWindowAsync(long migrationId, ThrottleSetting setting, WorkloadRecorder recorder, WindowStats baseline)
    {
        var ct = _ctx.Cancellation;
        var options = new BackfillOptions { Adaptive = setting.Adaptive, TargetBatchTime = TimeSpan.FromMilliseconds(setting.TargetBatchTimeMs), Delay = TimeSpan.FromMilliseconds(setting.DelayMs) };
        var before = (await _ctx.Engine.GetMigrationAsync(migrationId, ct)).RowsBackfilled;
        var plan = await _ctx.Engine.PlanBackfillAsync(migrationId, ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(_window);
        var window = recorder.BeginWindow($"backfill: {setting.Label}");
        var watch = Stopwatch.StartNew();
        await using (Ui.Status(() => $"[backfill: {setting.Label}] {Progress()} | {AppStatus.LastSecond(recorder, baseline)}"))
        {
            try
            {
                await _ctx.Engine.RunBackfillAsync(plan, options, stop.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                // The window is over; every committed batch stays, the next run resumes after it.
            }
        }

        var seconds = watch.Elapsed.TotalSeconds;
        var app = window.End();
        var rows = (await _ctx.Engine.GetMigrationAsync(migrationId, ct)).RowsBackfilled - before;
        var run = new ThrottleRun(setting, seconds, rows, rows / seconds, app);
        Ui.Line($"[backfill: {setting.Label}] {Fmt.Rate(run.RowsPerSecond, "rows")} for {Fmt.Seconds(seconds)}; app {Fmt.Percent(app.TpsRatio(baseline))} of baseline, slowest second {(app.MinSecondRatio(baseline) is { } m ? Fmt.Percent(m) : "-")}, "
            + $"p99 {Fmt.Ms(app.P99Ms)}, longest wait {Fmt.Ms(app.MaxMs)}, {app.Errors} errors");
        return run;
    }

    private async Task FinishBackfillAsync(long migrationId, WorkloadRecorder recorder, WindowStats baseline)
    {
        var ct = _ctx.Cancellation;
        var current = await _ctx.Engine.GetMigrationAsync(migrationId, ct);
        if (current.Phase is MigrationPhase.Backfilled or MigrationPhase.Verified)
        {
            return;
        }

        var watch = Stopwatch.StartNew();
        await using (Ui.Status(() => $"[backfill: finishing] {Progress()} | {AppStatus.LastSecond(recorder, baseline)}"))
        {
            current = await _ctx.Engine.RunBackfillAsync(await _ctx.Engine.PlanBackfillAsync(migrationId, ct), new BackfillOptions(), ct);
        }

        Ui.Line($"[backfill: finishing] {Fmt.Count(current.RowsBackfilled)} rows filled in all, the rest in {Fmt.Seconds(watch.Elapsed.TotalSeconds)} at the engine's defaults");
    }

    private string Progress()
        => _ctx.Observer.LatestProgress is { } p ? (p.PercentComplete >= 0 ? $"{p.PercentComplete}% " : "") + p.Status : "starting";
}
