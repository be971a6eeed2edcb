using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>A pipeline stage run again: the same expand returns its migration, a finished phase is a no-op, index existence switches.</summary>
public class IdempotentStageTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public IdempotentStageTests(TestDatabase db)
    {
        _db = db;
    }

    [Fact]
    public async Task The_same_expand_request_run_again_returns_the_migration_it_started_and_runs_nothing()
    {
        await Tables.CreateOrdersAsync(_db, "orders_idem1");
        var engine = Engines.For(_db);
        var request = new ColumnRenameRequest("public", "orders_idem1", "email", "email_address") { Tag = "release-7" };
        var first = await engine.RunAsync(await engine.PlanColumnRenameAsync(request));
        var events = (await engine.GetMigrationAsync(first.Id)).Events.Count;

        var again = await engine.PlanColumnRenameAsync(request);
        Assert.True(again.AlreadyDone);
        Assert.Equal(first.Id, again.MigrationId);
        Assert.Empty(again.Steps);
        Assert.Contains($"Migration {first.Id} was started by this same request (tag 'release-7')", again.Summary, StringComparison.Ordinal);
        var second = await engine.RunAsync(again);

        Assert.Equal(first.Id, second.Id);
        Assert.Equal(MigrationPhase.Expanded, second.Phase);
        Assert.Equal(events, (await engine.GetMigrationAsync(first.Id)).Events.Count);
        Assert.Single(await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_idem1" }));
    }

    [Fact]
    public async Task A_different_request_on_the_same_table_still_fails_with_MigrationAlreadyActive()
    {
        await Tables.CreateOrdersAsync(_db, "orders_idem2");
        var engine = Engines.For(_db);
        var first = await engine.RunAsync(await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "orders_idem2", "email", "email_address") { Tag = "release-7" }));

        // Another new name; the same arguments under another tag; another operation.
        foreach (var plan in new Func<Task<PhasePlan>>[]
        {
            () => engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "orders_idem2", "email", "mail") { Tag = "release-7" }),
            () => engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "orders_idem2", "email", "email_address") { Tag = "release-8" }),
            () => engine.PlanAddColumnAsync(new AddColumnRequest("public", "orders_idem2", "status", "text")),
        })
        {
            var error = await Assert.ThrowsAsync<ZdtException>(plan);
            Assert.Equal(ErrorIds.MigrationAlreadyActive, error.ErrorId);
            Assert.Contains($"migration {first.Id} (RenameColumn", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_table_rename_run_again_after_its_expand_returns_its_migration_although_the_old_name_is_now_a_view()
    {
        await Tables.CreateOrdersAsync(_db, "orders_idem3");
        var engine = Engines.For(_db);
        var request = new TableRenameRequest("public", "orders_idem3", "orders_idem3_new");
        var first = await engine.RunAsync(await engine.PlanTableRenameAsync(request));
        var second = await engine.RunAsync(await engine.PlanTableRenameAsync(request));
        Assert.Equal(first.Id, second.Id);
    }

    [Fact]
    public async Task Complete_contract_of_a_completed_migration_is_a_no_op_that_says_so()
    {
        await Tables.CreateOrdersAsync(_db, "orders_idem4");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer: observer);
        var migration = await engine.RunAsync(await engine.PlanTableRenameAsync(new TableRenameRequest("public", "orders_idem4", "orders_idem4_new")));
        await engine.RunAsync(await engine.PlanContractAsync(migration.Id));
        var events = (await engine.GetMigrationAsync(migration.Id)).Events.Count;

        var again = await engine.PlanContractAsync(migration.Id);
        Assert.True(again.AlreadyDone);
        var done = await engine.RunAsync(again);

        Assert.Equal(MigrationPhase.Completed, done.Phase);
        Assert.Contains(observer.VerboseMessages, m => m.Contains($"Migration {migration.Id} (RenameTable", StringComparison.Ordinal) && m.Contains("was already completed", StringComparison.Ordinal));
        Assert.Equal(events, (await engine.GetMigrationAsync(migration.Id)).Events.Count);
        // Undo of a completed migration is still out of order.
        Assert.Equal(ErrorIds.PhaseOutOfOrder, (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanUndoAsync(migration.Id))).ErrorId);
    }

    [Fact]
    public async Task New_index_IfNotExists_and_Remove_index_IfExists_run_nothing_when_already_done()
    {
        await Tables.CreateOrdersAsync(_db, "orders_idem5");
        var engine = Engines.For(_db);
        var create = new CreateIndexRequest("public", "orders_idem5") { Columns = new[] { "qty" }, IfNotExists = true };
        var built = await engine.RunAsync(await engine.PlanCreateIndexAsync(create));

        var again = await engine.PlanCreateIndexAsync(create);
        Assert.True(again.AlreadyDone);
        Assert.Equal(built.Id, again.MigrationId);
        Assert.Contains("CREATE INDEX orders_idem5_qty_idx ON public.orders_idem5 USING btree (qty)", again.Summary, StringComparison.Ordinal);
        Assert.Equal(built.Id, (await engine.RunAsync(again)).Id);
        Assert.Equal(ErrorIds.NameTaken, (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanCreateIndexAsync(create with { IfNotExists = false }))).ErrorId);

        var drop = new DropIndexRequest("public", "orders_idem5_qty_idx") { IfExists = true };
        Assert.False((await engine.PlanDropIndexAsync(drop)).AlreadyDone);
        await engine.RunAsync(await engine.PlanDropIndexAsync(drop));
        var nothing = await engine.PlanDropIndexAsync(drop);
        Assert.True(nothing.AlreadyDone);
        Assert.Null(nothing.MigrationId);
        Assert.Equal(ErrorIds.IndexNotFound, (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanDropIndexAsync(drop with { IfExists = false }))).ErrorId);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'orders_idem5_qty_idx'"));
    }
}
