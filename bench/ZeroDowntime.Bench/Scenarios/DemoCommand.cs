using System.Diagnostics;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Backfill.Throttle;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>What the demo does; the defaults finish in well under a minute on a 2-core machine.</summary>
public sealed record DemoOptions
{
    public long Rows { get; init; } = 300_000;

    public TimeSpan Baseline { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Connections per application version.</summary>
    public int Connections { get; init; } = 3;

    /// <summary>Statements per second per application version.</summary>
    public double Rate { get; init; } = 500;

    /// <summary>Put a long transaction in the way of each ACCESS EXCLUSIVE step, as production would.</summary>
    public bool InjectLocks { get; init; } = true;

    /// <summary>The load burst in the middle of the backfill: when it starts, how long it lasts, how many clients flat out.</summary>
    public TimeSpan BurstAfter { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan BurstLength { get; init; } = TimeSpan.FromSeconds(10);

    public int BurstClients { get; init; } = 4;
}

/// <summary>
/// The README's main job: rename orders.address to billing_address on a few hundred thousand
/// rows while two application versions keep reading and writing, phase by phase, and show what the
/// application saw compared with a baseline window measured first. Exit code 1 if the application
/// saw any error or parity failed.
/// </summary>
public sealed class DemoCommand
{
    private readonly BenchContext _ctx;
    private readonly DemoOptions _options;
    private readonly List<DemoRow> _rows = new();
    private OrdersTable? _burstTable;

    public DemoCommand(BenchContext ctx, DemoOptions options)
    {
        _ctx = ctx;
        _options = options;
    }

    private ConsoleUi Ui => _ctx.Ui;

    public async Task<int> RunAsync()
    {
        var ct = _ctx.Cancellation;
        var total = Stopwatch.StartNew();
        Ui.Line($"ZeroDowntime demo: rename orders.address to billing_address on {Fmt.Count(_options.Rows)} rows while the application runs");
        Ui.Line($"[server] {_ctx.Server.Description}");
        await _ctx.Server.ResetSchemasAsync(ct);
        var table = await _ctx.CreateOrdersAsync("orders", _options.Rows);
        _burstTable = await _ctx.CreateOrdersAsync("burst", Math.Min(_options.Rows, 100_000));

        var recorder = new WorkloadRecorder();
        var workload = new WorkloadOptions { Connections = _options.Connections, Rate = _options.Rate, IdRange = _options.Rows };
        var v1 = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("v1", table.Qualified, Ident(OrdersTable.OldColumn)), workload, recorder);
        AppSimulator? v2 = null;
        var whole = recorder.BeginWindow("whole run");
        Ui.Line($"[app] v1 started: {workload.Describe()}, using \"address\"");
        ParityResult? parity = null;
        try
        {
            // Let connections open, code get compiled and caches warm before measuring anything.
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            var baseline = await BaselineAsync(recorder, ct);
            var phases = _ctx.Phases(recorder);

            var expandPlan = await _ctx.Engine.PlanColumnRenameAsync(new ColumnRenameRequest(table.Schema, table.Name, OrdersTable.OldColumn, OrdersTable.NewColumn), ct);
            var (migration, expand) = await RunDdlAsync(phases, "expand", expandPlan, recorder, baseline);

            // A rollout shifts traffic, it does not add any: the offered load stays what the baseline saw.
            var half = workload with { Rate = _options.Rate / 2, Seed = 7 };
            v1.SetRate(_options.Rate / 2);
            v2 = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("v2", table.Qualified, Ident(OrdersTable.NewColumn)), half, recorder);
            Ui.Line($"[app] v2 started on \"billing_address\" and takes half the traffic ({half.Describe()}); the trigger keeps both columns equal");

            await BackfillAsync(migration.Id, recorder, baseline, ct);
            parity = await ParityAsync(migration.Id, recorder, baseline, ct);

            await v1.StopAsync();
            v2.SetRate(_options.Rate);
            Ui.Line($"[app] v1 stopped, v2 takes all the traffic: the rollout is complete ({Fmt.Count(v1.Operations)} v1 statements, {v1.Errors} errors)");
            if (parity.InParity)
            {
                await RunDdlAsync(phases, "contract", await _ctx.Engine.PlanContractAsync(migration.Id, ct), recorder, baseline);
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
            else
            {
                Ui.Line("[contract] skipped: parity failed, the old column must stay");
            }

            await v2.StopAsync();
            Ui.Line($"[app] v2 stopped ({Fmt.Count(v2.Operations)} statements, {v2.Errors} errors)");
            var all = whole.End();
            return Summarize(baseline, all, parity, total.Elapsed);
        }
        finally
        {
            await v1.DisposeAsync();
            if (v2 is not null)
            {
                await v2.DisposeAsync();
            }
        }
    }

    private async Task<WindowStats> BaselineAsync(WorkloadRecorder recorder, CancellationToken ct)
    {
        var window = recorder.BeginWindow("baseline");
        await using (Ui.Status(() => $"[baseline] measuring the application without any migration | {AppStatus.LastSecond(recorder, null)}"))
        {
            await Task.Delay(_options.Baseline, ct);
        }

        var baseline = window.End();
        Ui.Line($"[baseline] {Fmt.Seconds(baseline.Seconds)} without migration: {Fmt.Count(baseline.Tps)} tx/s, p99 {Fmt.Ms(baseline.P99Ms)}, max {Fmt.Ms(baseline.MaxMs)}, {baseline.Errors} errors");
        _rows.Add(new DemoRow("baseline", baseline, null, "no migration running"));
        return baseline;
    }

    private async Task<(ZeroDowntime.Engine.Migration, PhaseResult)> RunDdlAsync(PhaseRunner phases, string name, Engine.Planning.PhasePlan plan, WorkloadRecorder recorder, WindowStats baseline)
    {
        var holder = _options.InjectLocks ? $"; a session holding ACCESS SHARE for {Fmt.Seconds(_ctx.Options.LockHold.TotalSeconds)} is put in front of each ACCESS EXCLUSIVE step" : "";
        Ui.Line($"[{name}] {plan.Steps.Count} step(s){holder}");
        (ZeroDowntime.Engine.Migration, PhaseResult) outcome;
        await using (Ui.Status(() => $"[{name}] running | {AppStatus.LastSecond(recorder, baseline)}"))
        {
            outcome = await phases.RunAsync(name, _options.Rows, plan, _options.InjectLocks, _ctx.Cancellation);
        }

        var result = outcome.Item2;
        foreach (var step in result.Steps)
        {
            Ui.Line($"    {step.Title}: {step.Lock}, {step.Attempts} attempt(s), transaction {Fmt.Ms(step.LockHeldMs)}");
        }

        var app = result.App!;
        var retries = result.Attempts - result.Steps.Count;
        var note = $"{result.AccessExclusiveSteps} ACCESS EXCLUSIVE step(s), held at most {Fmt.Ms(result.MaxAccessExclusiveMs)}; {retries} lock retr{(retries == 1 ? "y" : "ies")} (lock_timeout {Fmt.Ms(result.LockTimeoutMs)})";
        Ui.Line($"[{name}] done in {Fmt.Seconds(result.Seconds)}: {note}");
        Ui.Line($"    app: {Describe(app, baseline)}");
        _rows.Add(new DemoRow(name, app, result.MaxAccessExclusiveMs, note));
        return outcome;
    }

    private async Task BackfillAsync(long migrationId, WorkloadRecorder recorder, WindowStats baseline, CancellationToken ct)
    {
        // The engine's defaults, as Invoke-Backfill runs them; the callback only prints the throttle's decisions.
        var clock = Stopwatch.StartNew();
        var options = new BackfillOptions();
        ThrottleDecision? shown = null;
        options = options with
        {
            Throttle = options.Throttle with
            {
                // Every change, and no repeats of the same verdict (an idle server is re-read every few seconds).
                OnDecision = d =>
                {
                    if (shown is null || d.Action != shown.Action || d.Duty != shown.Duty)
                    {
                        Ui.Line($"    throttle @{Fmt.Seconds(clock.Elapsed.TotalSeconds)}: {d}");
                    }

                    shown = d;
                },
            },
        };
        Ui.Line($"[backfill] engine defaults: the adaptive throttle watches the server (pg_stat_database) and works only the share of the time that costs the others little");
        var window = recorder.BeginWindow("backfill");
        ZeroDowntime.Engine.Migration done;
        using var burstStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await using (Ui.Status(() => $"[backfill] {Progress()} | {AppStatus.LastSecond(recorder, baseline)}"))
        {
            var backfill = _ctx.Engine.RunBackfillAsync(await _ctx.Engine.PlanBackfillAsync(migrationId, ct), options, ct);
            var burst = BurstAsync(clock, backfill, burstStop.Token);
            done = await backfill;
            await burstStop.CancelAsync();
            await burst;
        }

        var app = window.End();
        var rate = done.RowsBackfilled / clock.Elapsed.TotalSeconds;
        Ui.Line($"[backfill] {Fmt.Count(done.RowsBackfilled)} rows in {Fmt.Seconds(clock.Elapsed.TotalSeconds)} ({Fmt.Rate(rate, "rows")})");
        Ui.Line($"    app: {Describe(app, baseline)}");
        _rows.Add(new DemoRow("backfill", app, null, $"{Fmt.Count(done.RowsBackfilled)} rows, {Fmt.Rate(rate, "rows")}; a load burst in the middle"));
    }

    /// <summary>
    /// A traffic spike in the middle of the backfill: more clients, flat out, on a table of their
    /// own (their figures are theirs, the application's stay the application's). The throttle
    /// sees the server's commit rate jump, probes, backs off, and goes back to full speed when it ends.
    /// </summary>
    private async Task BurstAsync(Stopwatch clock, Task backfill, CancellationToken ct)
    {
        try
        {
            await Task.WhenAny(Task.Delay(_options.BurstAfter, ct), backfill);
            if (backfill.IsCompleted || ct.IsCancellationRequested)
            {
                return;
            }

            var workload = new WorkloadOptions { Connections = _options.BurstClients, Rate = null, IdRange = _burstTable!.Rows, Seed = 13 };
            var spike = new WorkloadRecorder();
            var measured = spike.BeginWindow("burst");
            Ui.Line($"[burst] @{Fmt.Seconds(clock.Elapsed.TotalSeconds)}: {workload.Describe()} for {Fmt.Seconds(_options.BurstLength.TotalSeconds)}, a traffic spike on top of the application");
            await using (AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("burst", _burstTable.Qualified, Ident(OrdersTable.OldColumn)), workload, spike))
            {
                await Task.WhenAny(Task.Delay(_options.BurstLength, ct), backfill);
            }

            var stats = measured.End();
            Ui.Line($"[burst] @{Fmt.Seconds(clock.Elapsed.TotalSeconds)}: over ({Fmt.Count(stats.Tps)} tx/s, {stats.Errors} errors)");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The backfill ended first.
        }
    }

    private async Task<ParityResult> ParityAsync(long migrationId, WorkloadRecorder recorder, WindowStats baseline, CancellationToken ct)
    {
        var window = recorder.BeginWindow("parity");
        ParityResult parity;
        await using (Ui.Status(() => $"[parity] {Progress()} | {AppStatus.LastSecond(recorder, baseline)}"))
        {
            parity = await _ctx.Engine.TestColumnParityAsync(migrationId, ct);
        }

        var app = window.End();
        var verdict = parity.InParity ? "in parity" : $"NOT in parity, e.g. keys {string.Join(", ", parity.SampleKeys)}";
        Ui.Line($"[parity] {Fmt.Count(parity.Mismatches)} mismatches in {Fmt.Count(parity.RowsChecked)} rows ({Fmt.Seconds(parity.Duration.TotalSeconds)}, {Fmt.Rate(parity.RowsChecked / Math.Max(parity.Duration.TotalSeconds, 1e-3), "rows")}): {verdict}");
        _rows.Add(new DemoRow("parity", app, null, $"{Fmt.Count(parity.Mismatches)} mismatches in {Fmt.Count(parity.RowsChecked)} rows"));
        return parity;
    }

    private int Summarize(WindowStats baseline, WindowStats all, ParityResult? parity, TimeSpan elapsed)
    {
        var table = new TextTable("Phase", ">Time", ">App tx/s", ">vs baseline", ">p99", ">p99 vs base", ">Longest wait", ">Errors", ">ACCESS EXCL. held", "Notes");
        foreach (var row in _rows)
        {
            var app = row.App;
            table.Add(
                row.Name,
                Fmt.Seconds(app.Seconds),
                Fmt.Count(app.Tps),
                row.Name == "baseline" ? "-" : Fmt.Percent(app.TpsRatio(baseline)),
                Fmt.Ms(app.P99Ms),
                row.Name == "baseline" ? "-" : Fmt.Times(app.P99Ratio(baseline)),
                Fmt.Ms(app.MaxMs),
                app.Errors.ToString(System.Globalization.CultureInfo.InvariantCulture),
                row.AccessExclusiveMs is { } ms ? Fmt.Ms(ms) : "-",
                row.Note);
        }

        Ui.Line();
        Ui.Line("Summary (the application's throughput is its offered load: a stall shows as a drop, latency as the wait)");
        Ui.Line(table.ToConsole());
        if (_options.InjectLocks)
        {
            Ui.Line($"  expand and contract ran with a long transaction in the way on purpose: their p99 and longest wait are the engine's {Fmt.Ms(_ctx.EngineOptions.LockTimeout.TotalMilliseconds)} lock attempts (lock_timeout), where a plain ALTER TABLE would have stalled the application for the whole {Fmt.Seconds(_ctx.Options.LockHold.TotalSeconds)}.");
        }

        Ui.Line();
        var errorsOk = all.Errors == 0;
        var parityOk = parity?.InParity == true;
        Ui.Line($"Application errors over the whole run: {all.Errors}{(errorsOk ? "" : " -> " + string.Join("; ", all.ErrorSamples))}");
        Ui.Line($"Longest wait of any application statement: {Fmt.Ms(all.MaxMs)} (lock_timeout {Fmt.Ms(_ctx.EngineOptions.LockTimeout.TotalMilliseconds)})");
        Ui.Line($"Parity before contract: {(parityOk ? "yes" : "NO")}");
        var ok = errorsOk && parityOk;
        Ui.Line($"{(ok ? "OK" : "FAILED")}: column renamed under load in {Fmt.Seconds(elapsed.TotalSeconds)}{(_ctx.Server.IsThrowaway ? "; removing the throwaway server" : "")}");
        return ok ? 0 : 1;
    }

    private string Progress()
        => _ctx.Observer.LatestProgress is { } p
            ? (p.PercentComplete >= 0 ? $"{p.PercentComplete}% " : "") + p.Status
            : "starting";

    private static string Describe(WindowStats app, WindowStats baseline)
        => $"{Fmt.Count(app.Tps)} tx/s ({Fmt.Percent(app.TpsRatio(baseline))} of baseline), p99 {Fmt.Ms(app.P99Ms)} ({Fmt.Times(app.P99Ratio(baseline))} baseline), longest wait {Fmt.Ms(app.MaxMs)}, {app.Errors} errors"
            + (app.MinSecond is { } min ? $", slowest second {Fmt.Percent(min / Math.Max(baseline.Tps, 1e-9))}" : "");

    private static string Ident(string name) => ZeroDowntime.Engine.Sql.Ident.Quote(name);

    private sealed record DemoRow(string Name, WindowStats App, double? AccessExclusiveMs, string Note);
}
