using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>Scenarios that measure several backfill settings in turn on one column rename need rows left to fill for each.</summary>
internal static class BackfillRestart
{
    /// <summary>If an earlier window finished the table, undo the rename and expand it again so the next setting has rows to fill.</summary>
    public static async Task<ZeroDowntime.Engine.Migration> EnsureRowsToBackfillAsync(BenchContext ctx, PhaseRunner phases, ZeroDowntime.Engine.Migration migration, OrdersTable table, string tag)
    {
        var ct = ctx.Cancellation;
        var current = await ctx.Engine.GetMigrationAsync(migration.Id, ct);
        if (current.Phase is not (MigrationPhase.Backfilled or MigrationPhase.Verified))
        {
            return current;
        }

        ctx.Ui.Line($"[{tag}] the table is already filled: undo and expand again so the next setting has rows to fill");
        await phases.RunAsync("undo (setup)", table.Rows, await ctx.Engine.PlanUndoAsync(migration.Id, ct), injectLocks: false, ct);
        var plan = await ctx.Engine.PlanColumnRenameAsync(new ColumnRenameRequest(table.Schema, table.Name, OrdersTable.OldColumn, OrdersTable.NewColumn), ct);
        return (await phases.RunAsync("expand (setup)", table.Rows, plan, injectLocks: false, ct)).Migration;
    }
}
