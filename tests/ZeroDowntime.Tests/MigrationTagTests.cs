using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>-Tag: a caller's label stored with the migration, and Get-Migration's filters (tag, column, operation, phase).</summary>
public class MigrationTagTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public MigrationTagTests(TestDatabase db)
    {
        _db = db;
    }

    [Fact]
    public async Task A_tag_given_to_an_expand_and_to_a_one_shot_is_stored_and_found_by_it()
    {
        await Tables.CreateOrdersAsync(_db, "orders_tag1");
        var engine = Engines.For(_db);

        var rename = await engine.RunAsync(await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "orders_tag1", "email", "email_address") { Tag = "release-42" }));
        var index = await engine.RunAsync(await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "orders_tag1") { Columns = new[] { "qty" }, Tag = "release-42" }));
        var untagged = await engine.RunAsync(await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "orders_tag1") { Columns = new[] { "note" } }));

        Assert.Equal("release-42", rename.Tag);
        Assert.Equal("release-42", index.Tag);
        Assert.Null(untagged.Tag);
        Assert.Equal("release-42", await _db.ScalarAsync<string>($"SELECT tag FROM zdt.migration WHERE id = {rename.Id}"));

        var found = await engine.GetMigrationsAsync(new MigrationQuery { Tag = "release-42" });
        Assert.Equal(new[] { rename.Id, index.Id }, found.Select(m => m.Id));
        Assert.Empty(await engine.GetMigrationsAsync(new MigrationQuery { Tag = "Release-42" }));
        var active = await engine.GetMigrationsAsync(new MigrationQuery { Tag = "release-42", ActiveOnly = true });
        Assert.Equal(new[] { rename.Id }, active.Select(m => m.Id));
        Assert.Equal(_db.DatabaseName, active.Single().Database);
    }

    [Fact]
    public async Task Get_migration_filters_by_column_operation_and_phase_together()
    {
        await Tables.CreateOrdersAsync(_db, "orders_tag2");
        var engine = Engines.For(_db);
        var added = await engine.RunAsync(await engine.PlanAddColumnAsync(new AddColumnRequest("public", "orders_tag2", "status", "text")));
        await engine.RunAsync(await engine.PlanContractAsync(added.Id));
        var rename = await engine.RunAsync(await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "orders_tag2", "status", "state")));

        // The column matches by its original or its new name.
        Assert.Equal(new[] { added.Id, rename.Id }, (await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_tag2", Column = "status" })).Select(m => m.Id));
        Assert.Equal(new[] { rename.Id }, (await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_tag2", Column = "state" })).Select(m => m.Id));
        Assert.Equal(new[] { added.Id }, (await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_tag2", Operations = new[] { "AddColumn" } })).Select(m => m.Id));
        Assert.Equal(new[] { added.Id, rename.Id }, (await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_tag2", Operations = new[] { "addcolumn", "RenameColumn" } })).Select(m => m.Id));
        Assert.Equal(new[] { added.Id }, (await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_tag2", Phases = new[] { MigrationPhase.Completed } })).Select(m => m.Id));
        Assert.Equal(new[] { rename.Id }, (await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_tag2", Column = "status", Phases = new[] { MigrationPhase.Expanded, MigrationPhase.Backfilled } })).Select(m => m.Id));
        Assert.Empty(await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_tag2", Operations = new[] { "AddColumn" }, Phases = new[] { MigrationPhase.Expanded } }));
    }

    [Theory]
    [InlineData(" ")]
    [InlineData("")]
    public async Task A_blank_tag_is_refused_before_anything_is_planned(string tag)
    {
        var engine = Engines.For(_db);
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanTableRenameAsync(new TableRenameRequest("public", "no_such_table", "x") { Tag = tag }));
        Assert.Equal(ErrorIds.InvalidTag, error.ErrorId);
    }

    [Fact]
    public async Task A_tag_longer_than_the_ledger_takes_is_refused()
    {
        var engine = Engines.For(_db);
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanDropIndexAsync(new DropIndexRequest("public", "x") { Tag = new string('t', MigrationRequest.MaxTagLength + 1) }));
        Assert.Equal(ErrorIds.InvalidTag, error.ErrorId);
    }
}
