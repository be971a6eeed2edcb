using System.Diagnostics;
using System.Globalization;
using ZeroDowntime.Bench.Reporting;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using static ZeroDowntime.Engine.Sql.Ident;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>One phase of the type change as measured: its longest ACCESS EXCLUSIVE hold and the application's longest wait.</summary>
public sealed record TypeChangePhase(string Name, double Seconds, double MaxAccessExclusiveMs, double AppMaxWaitMs, long AppErrors);

/// <summary>The type change scenario's figures at one size.</summary>
public sealed record TypeChangeResult(
    long Rows,
    long ReferencingRows,
    WindowStats Baseline,
    IReadOnlyList<TypeChangePhase> Phases,
    double BackfillRowsPerSecond,
    double UpdateRowsPerSecond,
    double PlainAlterLockMs,
    double PlainAlterAppMaxWaitMs,
    long PlainAlterAppErrors);

/// <summary>
/// Integer to bigint on a primary key referenced by a foreign key from another table (the
/// referencing column changed too: -Cascade), under the application's load, against a plain
/// ALTER COLUMN TYPE of both tables of a twin in the same run: per phase the longest ACCESS
/// EXCLUSIVE hold and the application's longest wait against the plain ALTERs' full lock time;
/// the backfill's rate (both tables, under load) against one UPDATE of the twin's shadow (no load).
/// Writes bench/results/type-change-rows-N.md and .json of its own.
/// </summary>
public sealed class TypeChangeScenario
{
    private readonly BenchContext _ctx;
    private readonly long _rows;
    private readonly WorkloadOptions _workload;
    private readonly TimeSpan _window;
    private readonly ResultsPlace _results;

    public TypeChangeScenario(BenchContext ctx, long rows, WorkloadOptions workload, TimeSpan window, ResultsPlace results)
    {
        _results = results;
        _ctx = ctx;
        _rows = rows;
        _workload = workload with { IdRange = rows };
        _window = window;
    }

    private ConsoleUi Ui => _ctx.Ui;

    public async Task<TypeChangeResult> RunAsync()
    {
        var ct = _ctx.Cancellation;
        var lines = Math.Max(_rows / 10, 1);
        Ui.Line($"== Type change under load: integer to bigint primary key, {Fmt.Count(_rows)} rows, referenced by {Fmt.Count(lines)} rows; application {_workload.Describe()} ==");
        var name = "tc_" + RenameUnderLoadScenario.TableName(_rows);
        var table = await CreateAsync(name, lines);
        var twin = await CreateAsync(name + "_twin", lines);
        var phases = new List<TypeChangePhase>();
        var recorder = new WorkloadRecorder();
        var runner = _ctx.Phases(recorder);
        var app = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("v1", table.Qualified, Quote(OrdersTable.OldColumn)), _workload, recorder);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            var baseline = await MeasureAsync(recorder, "baseline", _window);

            var expand = await runner.RunAsync("type change: expand", _rows, await _ctx.Engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest(table.Schema, table.Name, "id", "bigint") { Cascade = true }, ct), injectLocks: false, ct);
            phases.Add(Phase(expand.Result));

            var window = recorder.BeginWindow("type change: backfill");
            var watch = Stopwatch.StartNew();
            var backfilled = await _ctx.Engine.RunBackfillAsync(await _ctx.Engine.PlanBackfillAsync(expand.Migration.Id, ct), new BackfillOptions(), ct);
            var backfillSeconds = watch.Elapsed.TotalSeconds;
            var backfillApp = window.End();
            phases.Add(new TypeChangePhase("type change: backfill", backfillSeconds, 0, backfillApp.MaxMs, backfillApp.Errors));
            var parity = await _ctx.Engine.TestColumnParityAsync(expand.Migration.Id, ct);
            Ui.Line($"[type change] backfill {Fmt.Count(backfilled.RowsBackfilled)} rows in {Fmt.Seconds(backfillSeconds)}; parity: {Fmt.Count(parity.Mismatches)} mismatches in {Fmt.Count(parity.RowsChecked)} rows");

            var contract = await runner.RunAsync("type change: contract", _rows, await _ctx.Engine.PlanContractAsync(expand.Migration.Id, ct), injectLocks: false, ct);
            phases.Add(Phase(contract.Result));
            await app.StopAsync();

            // The twin: the fastest copy there is (one UPDATE, no load), then the plain ALTERs under the same load.
            var update = Stopwatch.StartNew();
            await Sql.ExecuteAsync(_ctx.Admin, $"ALTER TABLE {twin.Qualified} ADD COLUMN id_copy bigint; UPDATE {twin.Qualified} SET id_copy = id", ct);
            var updateSeconds = update.Elapsed.TotalSeconds;
            await Sql.ExecuteAsync(_ctx.Admin, $"ALTER TABLE {twin.Qualified} DROP COLUMN id_copy", ct);
            await Sql.ExecuteAsync(_ctx.Admin, $"VACUUM {twin.Qualified}", ct);

            var twinRecorder = new WorkloadRecorder();
            await using var twinApp = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("twin", twin.Qualified, Quote(OrdersTable.OldColumn)), _workload with { Seed = 5 }, twinRecorder);
            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            var alterWindow = twinRecorder.BeginWindow("plain ALTER");
            var alter = Stopwatch.StartNew();
            await Sql.ExecuteAsync(_ctx.Admin, $"ALTER TABLE {twin.Qualified} ALTER COLUMN id TYPE bigint; ALTER TABLE {Lines(twin)} ALTER COLUMN order_id TYPE bigint", ct);
            var alterMs = alter.Elapsed.TotalMilliseconds;
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            var alterApp = alterWindow.End();
            await twinApp.StopAsync();
            Ui.Line($"[plain ALTER] both tables under ACCESS EXCLUSIVE for {Fmt.Ms(alterMs)}; app longest wait {Fmt.Ms(alterApp.MaxMs)}, {alterApp.Errors} errors");

            var backfillRate = backfilled.RowsBackfilled / backfillSeconds;
            var result = new TypeChangeResult(_rows, lines, baseline, phases, backfillRate, _rows / updateSeconds, alterMs, alterApp.MaxMs, alterApp.Errors);
            await WriteAsync(result);
            return result;
        }
        finally
        {
            await app.DisposeAsync();
            await Sql.ExecuteAsync(_ctx.Admin, $"DROP TABLE IF EXISTS {Lines(table)}, {table.Qualified}, {Lines(twin)}, {twin.Qualified} CASCADE", CancellationToken.None);
        }
    }

    private static string Lines(OrdersTable table) => Qualify(table.Schema, table.Name + "_lines");

    /// <summary>The bench's orders table with an integer key, and a referencing table of <paramref name="lines"/> rows.</summary>
    private async Task<OrdersTable> CreateAsync(string name, long lines)
    {
        var ct = _ctx.Cancellation;
        var table = await _ctx.CreateOrdersAsync(name, _rows);
        await Sql.ExecuteAsync(_ctx.Admin, string.Create(CultureInfo.InvariantCulture, $"""
            ALTER TABLE {table.Qualified} ALTER COLUMN id TYPE integer;
            CREATE TABLE {Lines(table)} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, order_id integer NOT NULL, qty integer NOT NULL);
            INSERT INTO {Lines(table)} (order_id, qty) SELECT 1 + (g * 7) % {_rows}, 1 + g % 5 FROM generate_series(1, {lines}) g;
            ALTER TABLE {Lines(table)} ADD FOREIGN KEY (order_id) REFERENCES {table.Qualified} (id);
            CREATE INDEX ON {Lines(table)} (order_id)
            """), ct);
        await Sql.ExecuteAsync(_ctx.Admin, $"VACUUM (ANALYZE) {table.Qualified}", ct);
        await Sql.ExecuteAsync(_ctx.Admin, $"VACUUM (ANALYZE) {Lines(table)}", ct);
        return table;
    }

    private async Task<WindowStats> MeasureAsync(WorkloadRecorder recorder, string name, TimeSpan length)
    {
        var window = recorder.BeginWindow(name);
        await Task.Delay(length, _ctx.Cancellation);
        var stats = window.End();
        Ui.Line($"[{name}] {Fmt.Count(stats.Tps)} tx/s, p99 {Fmt.Ms(stats.P99Ms)}, longest wait {Fmt.Ms(stats.MaxMs)}, {stats.Errors} errors");
        return stats;
    }

    private TypeChangePhase Phase(PhaseResult r)
    {
        Ui.Line($"[{r.Name}] {Fmt.Seconds(r.Seconds)}, {r.Steps.Count} steps; ACCESS EXCLUSIVE held at most {Fmt.Ms(r.MaxAccessExclusiveMs)}; app longest wait {Fmt.Ms(r.App!.MaxMs)}, {r.App.Errors} errors");
        return new TypeChangePhase(r.Name, r.Seconds, r.MaxAccessExclusiveMs, r.App.MaxMs, r.App.Errors);
    }

    private async Task WriteAsync(TypeChangeResult r)
    {
        var directory = _results.Directory;
        var name = _results.FileName("type-change");
        var md = ResultsFiles.StartReport(
            string.Create(CultureInfo.InvariantCulture, $"Type change under load: integer to bigint primary key, {r.Rows:N0} rows, referenced by {r.ReferencingRows:N0} rows (-Cascade)"),
            string.Create(CultureInfo.InvariantCulture, $"on {_ctx.Server.Description}; application {_workload.Describe()}; baseline {r.Baseline.Tps:N0} tx/s, p99 {r.Baseline.P99Ms:N1} ms, longest wait {r.Baseline.MaxMs:N1} ms. The machine is shared and noisy: figures as measured."),
            _results.Note);
        md.AppendLine("| phase | seconds | ACCESS EXCLUSIVE held at most (ms) | application's longest wait (ms) | errors |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var p in r.Phases)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {p.Name} | {p.Seconds:N1} | {p.MaxAccessExclusiveMs:N1} | {p.AppMaxWaitMs:N1} | {p.AppErrors} |");
        }

        md.AppendLine(CultureInfo.InvariantCulture, $"| plain `ALTER COLUMN TYPE` of both tables (twin) | {r.PlainAlterLockMs / 1000:N1} | {r.PlainAlterLockMs:N1} | {r.PlainAlterAppMaxWaitMs:N1} | {r.PlainAlterAppErrors} |");
        md.AppendLine();
        var maxHold = r.Phases.Max(p => p.MaxAccessExclusiveMs);
        md.AppendLine(CultureInfo.InvariantCulture, $"Target: every phase's ACCESS EXCLUSIVE under 50 ms: **{(maxHold < 50 ? "met" : "not met")}** (longest {maxHold:N1} ms, against the plain ALTER's {r.PlainAlterLockMs:N0} ms).");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Backfill: {r.BackfillRowsPerSecond:N0} rows/s over both tables under the application's load, against one `UPDATE ... SET id_copy = id` of the twin (no load) at {r.UpdateRowsPerSecond:N0} rows/s: {r.BackfillRowsPerSecond / r.UpdateRowsPerSecond:N2} x.");
        Ui.Line($"Wrote {await ResultsFiles.WriteScenarioAsync(directory, name, md.ToString(), r, _ctx.Cancellation)} and .json");
    }
}
