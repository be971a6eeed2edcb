using System.Diagnostics;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Reporting;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>
/// Item 4: the view strategy's expand at two sizes. Its promise is that the expand is a catalog
/// change whatever the table's size, so the time ACCESS EXCLUSIVE is held must not grow with
/// the rows. Reports "not available" when this engine build does not offer the strategy yet.
/// </summary>
public sealed class ViewStrategyScenario
{
    private readonly BenchContext _ctx;
    private readonly IReadOnlyList<long> _sizes;

    public ViewStrategyScenario(BenchContext ctx, IReadOnlyList<long> sizes)
    {
        _ctx = ctx;
        _sizes = sizes;
    }

    public async Task<ViewStrategyResult> RunAsync()
    {
        var ct = _ctx.Cancellation;
        _ctx.Ui.Line($"== View strategy expand ({string.Join(" and ", _sizes.Select(s => Fmt.Count(s)))} rows) ==");
        var expands = new List<ViewExpand>();
        foreach (var rows in _sizes)
        {
            var table = await _ctx.CreateOrdersAsync($"view_{RenameUnderLoadScenario.TableName(rows)}", rows);
            try
            {
                var request = new ColumnRenameRequest(table.Schema, table.Name, OrdersTable.OldColumn, OrdersTable.NewColumn) { Strategy = RenameStrategy.View };
                PhaseResult result;
                try
                {
                    var plan = await _ctx.Engine.PlanColumnRenameAsync(request, ct);
                    var watch = Stopwatch.StartNew();
                    (var migration, result) = await _ctx.Phases(null).RunAsync("view strategy: expand", rows, plan, injectLocks: false, ct);
                    await _ctx.Engine.RunAsync(await _ctx.Engine.PlanUndoAsync(migration.Id, ct), ct);
                }
                catch (ZdtException e) when (e.Kind == ErrorKind.NotImplemented || e.ErrorId == "StrategyNotAvailable")
                {
                    _ctx.Ui.Line($"[view] not available: {e.Message}");
                    return new ViewStrategyResult(false, e.Message, expands);
                }

                var strongest = result.Steps.Select(s => s.Lock).DefaultIfEmpty("none").MaxBy(LockRank) ?? "none";
                var longest = result.Steps.Select(s => s.LockHeldMs).DefaultIfEmpty(0).Max();
                expands.Add(new ViewExpand(rows, result.Seconds, result.Steps.Count, strongest, longest, result.MaxAccessExclusiveMs));
                _ctx.Ui.Line($"[view] {Fmt.Count(rows)} rows: expand {Fmt.Seconds(result.Seconds)}, {result.Steps.Count} step(s), strongest lock {strongest}, held at most {Fmt.Ms(longest)}");
            }
            finally
            {
                await table.DropAsync(_ctx.Admin, CancellationToken.None);
            }
        }

        return new ViewStrategyResult(true, null, expands);
    }

    private static int LockRank(string sqlName) => (int)Enum.GetValues<LockLevel>().FirstOrDefault(l => l.ToSqlName() == sqlName);
}
