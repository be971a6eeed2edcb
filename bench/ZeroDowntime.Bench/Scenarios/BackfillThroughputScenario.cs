using System.Diagnostics;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Reporting;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>
/// Items 1 and 6. Two identical tables get the same expand through the engine (new column, sync
/// trigger, copy of the address index); one is filled by the engine's backfill, the other by one
/// plain UPDATE, with autovacuum off on both so neither gets a vacuum the other did not. Then
/// the engine's parity check is timed against one plain count of mismatching rows on the same table.
/// No application runs: this is raw throughput.
/// </summary>
public sealed class BackfillThroughputScenario
{
    private readonly BenchContext _ctx;
    private readonly long _rows;
    private readonly BackfillOptions _options;

    public BackfillThroughputScenario(BenchContext ctx, long rows, BackfillOptions options)
    {
        _ctx = ctx;
        _rows = rows;
        _options = options;
    }

    public async Task<(BackfillThroughputResult Throughput, ParityRateResult? Parity)> RunAsync(bool measureParity)
    {
        var ct = _ctx.Cancellation;
        var ui = _ctx.Ui;
        ui.Line($"== Backfill throughput{(measureParity ? " and parity rate" : "")} ({Fmt.Count(_rows)} rows, no application) ==");
        var engineTable = await _ctx.CreateOrdersAsync("bf_engine", _rows);
        var updateTable = await _ctx.CreateOrdersAsync("bf_update", _rows);
        try
        {
            await engineTable.SetAutovacuumAsync(_ctx.Admin, enabled: false, ct);
            await updateTable.SetAutovacuumAsync(_ctx.Admin, enabled: false, ct);
            var migration = await ExpandAsync(engineTable, ct);
            await ExpandAsync(updateTable, ct);

            await Sql.ExecuteAsync(_ctx.Admin, "CHECKPOINT", ct);
            var watch = Stopwatch.StartNew();
            long updated;
            await using (ui.Status(() => $"[reference] UPDATE {updateTable.Qualified} SET {OrdersTable.NewColumn} = {OrdersTable.OldColumn}: {Fmt.Seconds(watch.Elapsed.TotalSeconds)}"))
            {
                updated = await Sql.ExecuteCountAsync(_ctx.Admin, $"UPDATE {updateTable.Qualified} SET {OrdersTable.NewColumn} = {OrdersTable.OldColumn}", ct);
            }

            var updateSeconds = watch.Elapsed.TotalSeconds;
            ui.Line($"[reference] one UPDATE of {Fmt.Count(updated)} rows: {Fmt.Seconds(updateSeconds)} ({Fmt.Rate(updated / updateSeconds, "rows")})");

            await Sql.ExecuteAsync(_ctx.Admin, "CHECKPOINT", ct);
            // The reference UPDATE is not followed by a VACUUM either: compare the walks alone.
            var plan = await _ctx.Engine.PlanBackfillAsync(migration.Id, vacuumAfter: false, ct);
            watch.Restart();
            ZeroDowntime.Engine.Migration done;
            await using (ui.Status(() => $"[engine] backfill {Progress()}"))
            {
                done = await _ctx.Engine.RunBackfillAsync(plan, _options, ct);
            }

            var engineSeconds = watch.Elapsed.TotalSeconds;
            ui.Line($"[engine] backfill of {Fmt.Count(done.RowsBackfilled)} rows: {Fmt.Seconds(engineSeconds)} ({Fmt.Rate(done.RowsBackfilled / engineSeconds, "rows")}), {Describe(_options)}");
            var throughput = new BackfillThroughputResult(
                _rows, Describe(_options), engineSeconds, done.RowsBackfilled / engineSeconds, null, updateSeconds, updated / updateSeconds);
            ui.Line($"[result] engine / UPDATE = {Fmt.Ratio(throughput.Ratio)} (target >= 0.90)");

            ParityRateResult? parity = null;
            if (measureParity)
            {
                parity = await MeasureParityAsync(engineTable, migration.Id, ct);
            }

            return (throughput, parity);
        }
        finally
        {
            await engineTable.DropAsync(_ctx.Admin, CancellationToken.None);
            await updateTable.DropAsync(_ctx.Admin, CancellationToken.None);
        }
    }

    public static string Describe(BackfillOptions options)
        => $"TargetBatchTime {Fmt.Ms(options.TargetBatchTime.TotalMilliseconds)}, Delay {Fmt.Ms(options.Delay.TotalMilliseconds)}"
            + (options.BatchSize is { } size ? $", BatchSize {Fmt.Count(size)}" : "");

    private async Task<ZeroDowntime.Engine.Migration> ExpandAsync(OrdersTable table, CancellationToken ct)
    {
        var plan = await _ctx.Engine.PlanColumnRenameAsync(new ColumnRenameRequest(table.Schema, table.Name, OrdersTable.OldColumn, OrdersTable.NewColumn), ct);
        await using (_ctx.Ui.Status(() => $"[setup] expanding {table.Qualified} (builds the index copy)"))
        {
            return await _ctx.Engine.RunAsync(plan, ct);
        }
    }

    private async Task<ParityRateResult> MeasureParityAsync(OrdersTable table, long migrationId, CancellationToken ct)
    {
        var count = $"SELECT count(*) FROM {table.Qualified} WHERE {OrdersTable.OldColumn} IS DISTINCT FROM {OrdersTable.NewColumn}";

        // Once unmeasured, so both measured scans find the table equally cached.
        await Sql.ScalarAsync<long>(_ctx.Admin, count, ct);
        var watch = Stopwatch.StartNew();
        ParityResult parity;
        await using (_ctx.Ui.Status(() => $"[engine] parity {Progress()}"))
        {
            parity = await _ctx.Engine.TestColumnParityAsync(migrationId, ct);
        }

        var engineSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        var mismatches = await Sql.ScalarAsync<long>(_ctx.Admin, count, ct);
        var countSeconds = watch.Elapsed.TotalSeconds;

        // The same count in one process: the engine's walk has no parallel workers either.
        await using var connection = await _ctx.Admin.OpenConnectionAsync(ct);
        await using (var serial = new Npgsql.NpgsqlCommand("SET max_parallel_workers_per_gather = 0", connection))
        {
            await serial.ExecuteNonQueryAsync(ct);
        }

        watch.Restart();
        await using (var serialCount = new Npgsql.NpgsqlCommand(count, connection))
        {
            await serialCount.ExecuteScalarAsync(ct);
        }

        var serialSeconds = watch.Elapsed.TotalSeconds;
        await using (var reset = new Npgsql.NpgsqlCommand("RESET max_parallel_workers_per_gather", connection))
        {
            await reset.ExecuteNonQueryAsync(ct);
        }

        var result = new ParityRateResult(parity.RowsChecked, parity.Mismatches, engineSeconds, parity.RowsChecked / engineSeconds, countSeconds, _rows / countSeconds, serialSeconds, _rows / serialSeconds);
        _ctx.Ui.Line($"[parity] engine: {Fmt.Count(parity.RowsChecked)} rows, {parity.Mismatches} mismatches in {Fmt.Seconds(engineSeconds)} ({Fmt.Rate(result.EngineRowsPerSecond, "rows")}); "
            + $"plain count: {mismatches} in {Fmt.Seconds(countSeconds)} ({Fmt.Rate(result.CountRowsPerSecond, "rows")}), without parallel workers {Fmt.Seconds(serialSeconds)}; ratios {Fmt.Ratio(result.Ratio)} and {Fmt.Ratio(result.SerialRatio)}");
        return result;
    }

    private string Progress()
        => _ctx.Observer.LatestProgress is { } p ? (p.PercentComplete >= 0 ? $"{p.PercentComplete}% " : "") + p.Status : "starting";
}
