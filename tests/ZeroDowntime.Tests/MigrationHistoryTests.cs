using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>Removing old finished migrations from the ledger (Remove-MigrationHistory): never an active one.</summary>
public class MigrationHistoryTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public MigrationHistoryTests(TestDatabase db)
    {
        _db = db;
    }

    [Fact]
    public async Task The_ledger_deletes_finished_migrations_older_than_the_cutoff_with_their_events_and_never_an_active_one()
    {
        await Tables.CreateOrdersAsync(_db, "orders_hist1", rows: 10);
        await Tables.CreateOrdersAsync(_db, "orders_hist2", rows: 10);
        await Tables.CreateOrdersAsync(_db, "orders_hist3", rows: 10);
        var engine = Engines.For(_db);
        var completed = await engine.RenameTableAsync("orders_hist1", "orders_hist1_v2");
        await engine.CompleteAsync(completed.Id);
        var undone = await engine.RenameTableAsync("orders_hist2", "orders_hist2_v2");
        await engine.UndoAsync(undone.Id);
        var active = await engine.RenameTableAsync("orders_hist3", "orders_hist3_v2");
        var recent = await engine.RenameColumnAsync("orders_hist2", "note", "remark");
        await engine.UndoAsync(recent.Id);
        // Finished long ago, by the ledger's clock; the active one too, which must not matter.
        await _db.ExecuteAsync($"UPDATE zdt.migration SET updated_at = now() - interval '100 days' WHERE id IN ({completed.Id}, {undone.Id}, {active.Id})");

        var ledger = new MigrationLedger("zdt", ConnectionTarget.Resolve(_db.ConnectionString));
        await using var connection = await _db.OpenAsync();
        var found = await ledger.FindFinishedOlderThanAsync(connection, TimeSpan.FromDays(90), id: null, tag: null, default);
        Assert.Equal(new[] { completed.Id, undone.Id }, found.Select(r => r.Id));

        // Asked for every id, it deletes only what is finished and old enough.
        var removed = await ledger.DeleteFinishedAsync(connection, new[] { completed.Id, undone.Id, active.Id, recent.Id }, TimeSpan.FromDays(90), default);
        Assert.Equal(new[] { completed.Id, undone.Id }, removed);
        Assert.Equal(0L, await _db.ScalarAsync<long>($"SELECT count(*) FROM zdt.migration WHERE id IN ({completed.Id}, {undone.Id})"));
        Assert.Equal(0L, await _db.ScalarAsync<long>($"SELECT count(*) FROM zdt.migration_event WHERE migration_id IN ({completed.Id}, {undone.Id})"));
        Assert.Equal(2L, await _db.ScalarAsync<long>($"SELECT count(*) FROM zdt.migration WHERE id IN ({active.Id}, {recent.Id})"));
        Assert.True(await _db.ScalarAsync<long>($"SELECT count(*) FROM zdt.migration_event WHERE migration_id = {active.Id}") > 0);

        // The active migration still completes: its row and events were left alone.
        var done = await engine.CompleteAsync(active.Id);
        Assert.Equal(ZeroDowntime.Engine.Planning.MigrationPhase.Completed, done.Phase);
    }

    [Fact]
    public async Task Asked_by_id_an_active_migration_is_refused_and_a_recent_one_is_not_found()
    {
        await Tables.CreateOrdersAsync(_db, "orders_hist4", rows: 10);
        var engine = Engines.For(_db);
        var active = await engine.RenameTableAsync("orders_hist4", "orders_hist4_v2");

        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.FindRemovableHistoryAsync(new HistoryRemovalRequest(TimeSpan.Zero) { Id = active.Id }));
        Assert.Equal(ErrorIds.MigrationNotFinished, refused.ErrorId);
        Assert.Contains("phase Expanded", refused.Message, StringComparison.Ordinal);

        await engine.CompleteAsync(active.Id);
        Assert.Empty(await engine.FindRemovableHistoryAsync(new HistoryRemovalRequest(TimeSpan.FromDays(1)) { Id = active.Id }));
        var found = await engine.FindRemovableHistoryAsync(new HistoryRemovalRequest(TimeSpan.Zero) { Id = active.Id });
        Assert.Equal(active.Id, Assert.Single(found).Id);
        Assert.NotEmpty(found[0].Events);
        Assert.Equal(new[] { active.Id }, await engine.RemoveHistoryAsync(new[] { active.Id }, TimeSpan.Zero));
        Assert.Equal(ErrorIds.MigrationNotFound, (await Assert.ThrowsAsync<ZdtException>(() => engine.GetMigrationAsync(active.Id))).ErrorId);
    }
}
