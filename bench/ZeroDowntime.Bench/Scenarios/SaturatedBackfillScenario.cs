using System.Diagnostics;
using System.Globalization;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Reporting;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Planning;
using static ZeroDowntime.Engine.Sql.Ident;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>A backfill setting of the saturated scenario, named as a user would type it.</summary>
/// <param name="RunToEnd">Fill the table to the end (the default: "the backfill finishes"; within the scenario's limit), or a window of the scenario's length.</param>
public sealed record SaturatedSetting(string Label, BackfillOptions Options, bool RunToEnd)
{
    public const string DefaultLabel = "defaults (adaptive throttle)";

    /// <summary>The default, then the named settings: what the cmdlet passes the engine for each (Invoke-Backfill's BuildBackfillOptions).</summary>
    public static IReadOnlyList<SaturatedSetting> All(int maxLoad) =>
    [
        new(DefaultLabel, new BackfillOptions(), RunToEnd: true),
        new("-TargetBatchTime 100ms (throttle off)", new BackfillOptions { Adaptive = false }, RunToEnd: false),
        new("-TargetBatchTime 20ms -Delay 100ms", new BackfillOptions { Adaptive = false, TargetBatchTime = TimeSpan.FromMilliseconds(20), Delay = TimeSpan.FromMilliseconds(100) }, RunToEnd: false),
        new(string.Create(CultureInfo.InvariantCulture, $"-MaxLoad {maxLoad}"), new BackfillOptions { MaxLoad = maxLoad }, RunToEnd: false),

        // The throttle's own trade-off, over as long as the default's run (a 10 s window would be
        // mostly its first look and first probes).
        new("-MaxImpact 15", new BackfillOptions { MaxImpactPercent = 15 }, RunToEnd: true),
    ];
}

/// <summary>One setting's window: the backfill's rate against its full speed, the application against its baseline, per second.</summary>
public sealed record SaturatedRun(
    string Setting,
    double Seconds,
    long Rows,
    double RowsPerSecond,
    double ShareOfFullSpeed,
    bool Finished,
    WindowStats App,
    double SlowestSecondRatio,
    double P99Ratio,
    IReadOnlyList<double> P99PerSecondMs,
    IReadOnlyList<string> ThrottleDecisions,
    bool RunToEnd = false)
{
    /// <summary>The targets of issue 11 for the default: every complete second >= 80% of the baseline, p99 <= 3x, 0 errors, finished.</summary>
    public bool MeetsTargets => SlowestSecondRatio >= 0.8 && P99Ratio <= 3 && App.Errors == 0 && Finished;
}

public sealed record SaturatedResult(
    long Rows,
    int Clients,
    IReadOnlyList<CalibrationStep> Calibration,
    double FullSpeedRowsPerSecond,
    double FullSpeedSeconds,
    WindowStats Baseline,
    double BaselineSlowestSecondRatio,
    IReadOnlyList<SaturatedRun> Runs,
    WindowStats BaselineAfter,
    string LoadBefore,
    string LoadAfter,
    string Workload);

/// <summary>The closed-loop throughput with this many clients (how N was chosen).</summary>
public sealed record CalibrationStep(int Clients, double Tps, double P99Ms);

/// <summary>
/// The saturated closed-loop scenario of issue 11 (item 4): an application of N clients flat out
/// (70% point reads by key, 20% updates by key, 10% inserts) on the bench's orders table, N as many
/// as it takes to saturate the server (more clients stop adding throughput); its no-migration
/// baseline; then the column rename's backfill at the engine's defaults to the end, and each named
/// setting for a window; the backfill's rate against its full speed (the same backfill, no
/// application, no throttle, measured first in the same run). Writes
/// bench/results/saturated-rows-N.md and .json of its own.
/// </summary>
public sealed class SaturatedBackfillScenario
{
    /// <summary>The issue's baseline: 20 s without migration.</summary>
    private static readonly TimeSpan BaselineLength = TimeSpan.FromSeconds(20);

    private static readonly TimeSpan CalibrationStepLength = TimeSpan.FromSeconds(4);

    private readonly BenchContext _ctx;
    private readonly long _rows;
    private readonly int? _clients;
    private readonly int _maxLoad;
    private readonly TimeSpan _window;
    private readonly TimeSpan _defaultLimit;
    private readonly ResultsPlace _results;

    /// <param name="clients">The application's clients, or null to find the saturation point.</param>
    /// <param name="maxLoad">The -MaxLoad setting measured.</param>
    /// <param name="defaultLimit">How long the default may run to reach the end (a shared machine can make it crawl); "not finished" past it.</param>
    public SaturatedBackfillScenario(BenchContext ctx, long rows, int? clients, int maxLoad, TimeSpan window, TimeSpan defaultLimit, ResultsPlace results)
    {
        _results = results;
        _ctx = ctx;
        _rows = rows;
        _clients = clients;
        _maxLoad = maxLoad;
        _window = window;
        _defaultLimit = defaultLimit;
    }

    private ConsoleUi Ui => _ctx.Ui;

    public async Task<SaturatedResult> RunAsync()
    {
        var ct = _ctx.Cancellation;
        var loadBefore = Load();
        Ui.Line($"== Saturated closed-loop application during the backfill: {Fmt.Count(_rows)} rows (load {loadBefore}) ==");
        var table = await _ctx.CreateOrdersAsync("sat_" + RenameUnderLoadScenario.TableName(_rows), _rows);
        var phases = _ctx.Phases(null);
        try
        {
            var migration = (await phases.RunAsync("expand (setup)", _rows, await _ctx.Engine.PlanColumnRenameAsync(new ColumnRenameRequest(table.Schema, table.Name, OrdersTable.OldColumn, OrdersTable.NewColumn), ct), injectLocks: false, ct)).Migration;

            // Full speed: the same backfill with nobody else on the server and no throttle.
            var fullOptions = new BackfillOptions { Adaptive = false };
            var full = await BackfillAsync(migration.Id, fullOptions, _window * 2, "full speed (no application, throttle off)", null, null);
            var fullSpeed = full.Rows / full.Seconds;
            Ui.Line($"[full speed] {Fmt.Rate(fullSpeed, "rows")} ({Fmt.Count(full.Rows)} rows in {Fmt.Seconds(full.Seconds)}, no application)");

            var calibration = new List<CalibrationStep>();
            var clients = _clients ?? await CalibrateAsync(table, calibration);
            var workload = new WorkloadOptions { Connections = clients, Rate = null, IdRange = _rows };
            var recorder = new WorkloadRecorder();
            await using var app = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("app", table.Qualified, Quote(OrdersTable.OldColumn)), workload, recorder);
            await Task.Delay(TimeSpan.FromSeconds(3), ct); // connections, JIT, caches
            var baseline = await MeasureAsync("baseline", recorder, BaselineLength, null);

            var runs = new List<SaturatedRun>();
            foreach (var setting in SaturatedSetting.All(_maxLoad))
            {
                migration = await BackfillRestart.EnsureRowsToBackfillAsync(_ctx, _ctx.Phases(recorder), migration, table, "saturated");

                // A second after the setup (or the previous setting) so the window starts from the application's own pace.
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                var run = await BackfillAsync(migration.Id, setting.Options, setting.RunToEnd ? _defaultLimit : _window, setting.Label, recorder, baseline);
                runs.Add(Summarize(setting, run, fullSpeed, recorder, baseline));
            }

            var after = await MeasureAsync("baseline after", recorder, BaselineLength / 2, baseline);
            await app.StopAsync();
            var result = new SaturatedResult(
                _rows,
                clients,
                calibration,
                fullSpeed,
                full.Seconds,
                baseline,
                baseline.MinSecondRatio(baseline) ?? 0,
                runs,
                after,
                loadBefore,
                Load(),
                workload.Describe());
            await WriteAsync(result);
            return result;
        }
        finally
        {
            await table.DropAsync(_ctx.Admin, CancellationToken.None);
        }
    }

    /// <summary>The machine's load averages (1, 5, 15 min) and running/total tasks: the bench shares the machine.</summary>
    private static string Load()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ');
            return $"{fields[0]} {fields[1]} {fields[2]} on {Environment.ProcessorCount} cores";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>Doubles the clients while the throughput still grows by 10%; N is the last that did: the server is saturated.</summary>
    private async Task<int> CalibrateAsync(OrdersTable table, List<CalibrationStep> steps)
    {
        var ct = _ctx.Cancellation;
        CalibrationStep? best = null;
        for (var clients = 1; clients <= 32; clients *= 2)
        {
            var recorder = new WorkloadRecorder();
            var workload = new WorkloadOptions { Connections = clients, Rate = null, IdRange = _rows, Seed = 100 + clients };
            await using (AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("calibrate", table.Qualified, Quote(OrdersTable.OldColumn)), workload, recorder))
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                var window = recorder.BeginWindow("calibration");
                await Task.Delay(CalibrationStepLength, ct);
                var stats = window.End();
                var step = new CalibrationStep(clients, stats.Tps, stats.P99Ms);
                steps.Add(step);
                Ui.Line($"[calibration] {clients} client(s) flat out: {Fmt.Count(stats.Tps)} tx/s, p99 {Fmt.Ms(stats.P99Ms)}");
                if (best is not null && step.Tps < best.Tps * 1.1)
                {
                    break;
                }

                best = step;
            }
        }

        Ui.Line($"[calibration] the server is saturated at {best!.Clients} client(s) ({Fmt.Count(best.Tps)} tx/s): more add less than 10%");
        return best.Clients;
    }

    private async Task<WindowStats> MeasureAsync(string name, WorkloadRecorder recorder, TimeSpan length, WindowStats? baseline)
    {
        var window = recorder.BeginWindow(name);
        await using (Ui.Status(() => $"[{name}] {AppStatus.LastSecond(recorder, baseline)}"))
        {
            await Task.Delay(length, _ctx.Cancellation);
        }

        var stats = window.End();
        Ui.Line($"[{name}] {Fmt.Seconds(stats.Seconds)}: {Fmt.Count(stats.Tps)} tx/s, slowest second {(stats.MinSecond is { } m ? Fmt.Count(m) : "-")}, p99 {Fmt.Ms(stats.P99Ms)}, longest wait {Fmt.Ms(stats.MaxMs)}, {stats.Errors} errors");
        return stats;
    }

    private sealed record BackfillWindow(double Seconds, long Rows, bool Finished, WindowStats? App, TimeSpan From, TimeSpan To, IReadOnlyList<string> Decisions);

    /// <summary>Runs the backfill for a window (cancelled at its end: the committed batches stay) or to the end.</summary>
    private async Task<BackfillWindow> BackfillAsync(long migrationId, BackfillOptions options, TimeSpan length, string label, WorkloadRecorder? recorder, WindowStats? baseline)
    {
        var ct = _ctx.Cancellation;
        var decisions = new List<string>();
        var watch = Stopwatch.StartNew();

        // The decisions as the engine takes them, for the results (Invoke-Backfill -Verbose shows the same lines).
        options = options with
        {
            Throttle = options.Throttle with
            {
                OnDecision = d =>
                {
                    lock (decisions)
                    {
                        decisions.Add(string.Create(CultureInfo.InvariantCulture, $"{d.At.TotalSeconds:0.0} s {d}"));
                    }
                },
            },
        };
        var before = (await _ctx.Engine.GetMigrationAsync(migrationId, ct)).RowsBackfilled;
        var plan = await _ctx.Engine.PlanBackfillAsync(migrationId, ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(length);

        var window = recorder?.BeginWindow($"backfill: {label}");
        var from = recorder?.Elapsed ?? TimeSpan.Zero;
        var finished = false;
        await using (Ui.Status(() => $"[{label}] {Progress()}{(recorder is null ? "" : " | " + AppStatus.LastSecond(recorder, baseline))}"))
        {
            try
            {
                var done = await _ctx.Engine.RunBackfillAsync(plan, options, stop.Token);
                finished = done.Phase is MigrationPhase.Backfilled or MigrationPhase.Verified;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                // The window is over; every committed batch stays, the next run resumes after it.
            }
        }

        var seconds = watch.Elapsed.TotalSeconds;
        var to = recorder?.Elapsed ?? TimeSpan.Zero;
        var app = window?.End();
        var rows = (await _ctx.Engine.GetMigrationAsync(migrationId, ct)).RowsBackfilled - before;
        lock (decisions)
        {
            return new BackfillWindow(seconds, rows, finished, app, from, to, decisions.ToList());
        }
    }

    private SaturatedRun Summarize(SaturatedSetting setting, BackfillWindow w, double fullSpeed, WorkloadRecorder recorder, WindowStats baseline)
    {
        var app = w.App!;
        var rate = w.Rows / w.Seconds;

        // Complete seconds only, as WindowStats.PerSecond counts them.
        var p99s = recorder.Seconds(w.From, w.To).Select(s => s.P99Ms).ToList();
        var run = new SaturatedRun(
            setting.Label,
            w.Seconds,
            w.Rows,
            rate,
            fullSpeed > 0 ? rate / fullSpeed : 0,
            setting.RunToEnd ? w.Finished : true,
            app,
            app.MinSecondRatio(baseline) ?? 0,
            app.P99Ratio(baseline),
            p99s,
            w.Decisions,
            setting.RunToEnd);
        Ui.Line($"[{setting.Label}] {Fmt.Count(w.Rows)} rows in {Fmt.Seconds(w.Seconds)}{(setting.RunToEnd ? (w.Finished ? " (finished)" : " (NOT finished)") : "")}: {Fmt.Rate(rate, "rows")} = {Fmt.Percent(run.ShareOfFullSpeed)} of full speed; "
            + $"app {Fmt.Percent(app.TpsRatio(baseline))} of baseline, slowest second {Fmt.Percent(run.SlowestSecondRatio)}, p99 {Fmt.Ms(app.P99Ms)} ({Fmt.Times(run.P99Ratio)}), longest wait {Fmt.Ms(app.MaxMs)}, {app.Errors} errors; {w.Decisions.Count} throttle decisions");
        return run;
    }

    private string Progress()
        => _ctx.Observer.LatestProgress is { } p ? (p.PercentComplete >= 0 ? $"{p.PercentComplete}% " : "") + p.Status : "starting";

    private async Task WriteAsync(SaturatedResult r)
    {
        var directory = _results.Directory;
        var name = _results.FileName("saturated");
        Ui.Line($"Wrote {await ResultsFiles.WriteScenarioAsync(directory, name, Render(r), r, _ctx.Cancellation)} and .json");
    }

    private string Render(SaturatedResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = ResultsFiles.StartReport(
            string.Create(inv, $"Saturated closed-loop application during the backfill: {r.Rows:N0} rows"),
            string.Create(inv, $"on {_ctx.Server.Description}. Machine load (1/5/15 min) before: {r.LoadBefore}; after: {r.LoadAfter}. The machine is shared with other work: every figure below is a ratio within this run."),
            _results.Note);

        var how = r.Calibration.Count > 0
            ? "the smallest count past which doubling the clients added less than 10% (" + string.Join(", ", r.Calibration.Select(c => string.Create(inv, $"{c.Clients}: {c.Tps:N0} tx/s"))) + ")."
            : "given on the command line.";
        md.AppendLine(inv, $"Application: {r.Workload} (closed loop) on `orders` (bigserial key, indexed text column), N = {r.Clients} clients: {how}");
        md.AppendLine();
        md.AppendLine(inv, $"Baseline (20 s, no migration): **{r.Baseline.Tps:N0} tx/s**, p99 {r.Baseline.P99Ms:N2} ms, its own slowest second {r.BaselineSlowestSecondRatio:P0} of its mean, {r.Baseline.ShareOfSecondsBelow(r.Baseline, 0.8) ?? 0:P0} of its seconds under 80% of its mean, {r.Baseline.Errors} errors. After all the backfills (no migration): {r.BaselineAfter.Tps:N0} tx/s ({r.BaselineAfter.Tps / Math.Max(r.Baseline.Tps, 1):P0} of the baseline: the machine's drift).");
        md.AppendLine();
        md.AppendLine(inv, $"Full speed (the same backfill, no application, throttle off, {r.FullSpeedSeconds:N1} s): **{r.FullSpeedRowsPerSecond:N0} rows/s**.");
        md.AppendLine();
        md.AppendLine("| Setting | Backfill | Rows/s | vs full speed | App tx/s vs baseline | Slowest second | Seconds < 80% | p99 | p99 vs baseline | Longest wait | Errors | Targets (default) |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var run in r.Runs)
        {
            var isDefault = run.Setting == SaturatedSetting.DefaultLabel;
            var span = run.RunToEnd ? (run.Finished ? "to the end" : "NOT finished") : "window";
            md.AppendLine(inv, $"| {run.Setting} | {span}: {run.Rows:N0} rows, {run.Seconds:N1} s | {run.RowsPerSecond:N0} | {run.ShareOfFullSpeed:P0} | {run.App.TpsRatio(r.Baseline):P0} | {run.SlowestSecondRatio:P0} | {run.App.ShareOfSecondsBelow(r.Baseline, 0.8) ?? 0:P0} | {run.App.P99Ms:N2} ms | {run.P99Ratio:N1}x | {run.App.MaxMs:N1} ms | {run.App.Errors} | {(isDefault ? (run.MeetsTargets ? "met" : "**not met**") : "-")} |");
        }

        md.AppendLine();
        md.AppendLine("Targets for the default (issue 11): every complete second of the backfill >= 80% of the baseline's throughput, p99 <= 3x the baseline's, 0 errors, the backfill finishes. *Seconds < 80%* is the share of complete seconds under 80% of the baseline's mean: where the baseline itself has such seconds, a run with no more of them than the baseline adds no dips of its own.");
        md.AppendLine();
        md.AppendLine("## Per second (application tx/s as % of the baseline; p99 ms)");
        md.AppendLine();
        foreach (var run in r.Runs)
        {
            md.AppendLine($"- {run.Setting}: " + string.Join(" ", run.App.PerSecond.Select(n => (n / Math.Max(r.Baseline.Tps, 1) * 100).ToString("0", inv))));
            md.AppendLine("  p99: " + string.Join(" ", run.P99PerSecondMs.Select(p => p.ToString("0.0", inv))));
        }

        md.AppendLine();
        md.AppendLine("## The throttle's decisions (time since the backfill started)");
        foreach (var run in r.Runs.Where(x => x.ThrottleDecisions.Count > 0))
        {
            md.AppendLine();
            md.AppendLine(inv, $"{run.Setting}:");
            md.AppendLine();
            foreach (var d in run.ThrottleDecisions)
            {
                md.AppendLine(inv, $"- {d}");
            }
        }

        return md.ToString();
    }
}
