using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Reporting;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine;
using static ZeroDowntime.Engine.Sql.Ident;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>
/// Item 5: what the sync trigger costs each application write. Writes only, every connection flat
/// out (closed loop: this measures capacity, not a fixed load), on two identical tables: one
/// untouched, one expanded by the engine. Variants run in interleaved rounds so drift of the
/// machine hits them all alike; the median round counts. The expanded table is also run with the
/// trigger disabled, which separates the trigger's own cost from the new column's index.
/// </summary>
public sealed class TriggerCostScenario
{
    private readonly BenchContext _ctx;
    private readonly long _rows;
    private readonly int _connections;
    private readonly TimeSpan _round;
    private readonly int _rounds;

    public TriggerCostScenario(BenchContext ctx, long rows, int connections, TimeSpan round, int rounds)
    {
        _ctx = ctx;
        _rows = rows;
        _connections = connections;
        _round = round;
        _rounds = rounds;
    }

    public async Task<TriggerCostResult> RunAsync()
    {
        var ct = _ctx.Cancellation;
        var workload = new WorkloadOptions { Connections = _connections, Rate = null, Mix = OperationMix.WritesOnly, IdRange = _rows };
        _ctx.Ui.Line($"== Sync trigger cost on writes ({Fmt.Count(_rows)} rows, {workload.Describe()}, {_rounds} rounds of {Fmt.Seconds(_round.TotalSeconds)}) ==");
        var plain = await _ctx.CreateOrdersAsync("tc_plain", _rows);
        var expanded = await _ctx.CreateOrdersAsync("tc_expanded", _rows);
        try
        {
            var plan = await _ctx.Engine.PlanColumnRenameAsync(new ColumnRenameRequest(expanded.Schema, expanded.Name, OrdersTable.OldColumn, OrdersTable.NewColumn), ct);
            var migration = await _ctx.Engine.RunAsync(plan, ct);
            var trigger = migration.Details["SyncTrigger"];

            var variants = new (string Label, string Description, OrdersTable Table, string Column, bool? TriggerOn)[]
            {
                ("no migration", "v1 writes to a table without migration", plain, OrdersTable.OldColumn, null),
                ("expanded, trigger off", "v1 writes to the expanded table (new column and its index) with the trigger disabled", expanded, OrdersTable.OldColumn, false),
                ("expanded, v1 writes", "v1 writes address, the trigger copies it to billing_address", expanded, OrdersTable.OldColumn, true),
                ("expanded, v2 writes", "v2 writes billing_address, the trigger copies it to address", expanded, OrdersTable.NewColumn, true),
            };
            var tps = variants.Select(_ => new List<double>()).ToArray();
            for (var round = 0; round < _rounds; round++)
            {
                for (var i = 0; i < variants.Length; i++)
                {
                    var v = variants[i];
                    if (v.TriggerOn is { } on)
                    {
                        await Sql.ExecuteAsync(_ctx.Admin, $"ALTER TABLE {v.Table.Qualified} {(on ? "ENABLE" : "DISABLE")} TRIGGER {trigger}", ct);
                    }

                    var stats = await MeasureAsync(new AppVersionSpec($"w{i}", v.Table.Qualified, Quote(v.Column)), workload with { Seed = round * 10 + i }, $"round {round + 1}/{_rounds}: {v.Label}");
                    tps[i].Add(stats.Tps);
                }
            }

            var result = new TriggerCostResult(_rows, workload.Describe(), _round.TotalSeconds, variants.Select((v, i) => new TriggerVariant(v.Label, v.Description, tps[i])).ToList());
            var baseline = result.Variants[0].MedianTps;
            foreach (var v in result.Variants)
            {
                _ctx.Ui.Line($"[trigger] {v.Label}: median {Fmt.Rate(v.MedianTps, "writes")} ({Fmt.Percent(v.MedianTps / baseline)} of no migration)");
            }

            return result;
        }
        finally
        {
            await plain.DropAsync(_ctx.Admin, CancellationToken.None);
            await expanded.DropAsync(_ctx.Admin, CancellationToken.None);
        }
    }

    private async Task<WindowStats> MeasureAsync(AppVersionSpec version, WorkloadOptions workload, string label)
    {
        var recorder = new WorkloadRecorder();
        await using var app = AppSimulator.Start(_ctx.AppSource, version, workload, recorder);
        await Task.Delay(TimeSpan.FromSeconds(0.5), _ctx.Cancellation); // connections open, steady state
        var window = recorder.BeginWindow(label);
        await using (_ctx.Ui.Status(() => $"[trigger] {label} | {AppStatus.LastSecond(recorder, null)}"))
        {
            await Task.Delay(_round, _ctx.Cancellation);
        }

        var stats = window.End();
        await app.StopAsync();
        if (stats.Errors > 0)
        {
            _ctx.Ui.Line($"[trigger] {label}: {stats.Errors} errors: {string.Join("; ", stats.ErrorSamples)}");
        }

        return stats;
    }
}
