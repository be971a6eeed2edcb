using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// One release, several renames: columns of one table share one view (one migration that the
/// second rename extends); tables share one version schema; the version completes (or is undone)
/// as a whole, in one transaction.
/// </summary>
public class VersionSchemaTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public VersionSchemaTests(TestDatabase db)
    {
        _db = db;
    }

    [Fact]
    public async Task Two_columns_of_one_table_share_one_view_and_one_migration_and_complete_together()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE products (id serial PRIMARY KEY, sku text NOT NULL UNIQUE, qty int NOT NULL DEFAULT 1, price numeric);
            INSERT INTO products (sku, price) SELECT 'p' || g, g FROM generate_series(1, 10) g;
            """);
        var engine = Engines.For(_db);

        var first = await engine.RenameColumnByViewAsync("products", "sku", "code", "rel_cols");
        var plan = await engine.PlanColumnRenameAsync(ColumnRenameViews.ViewRequest("products", "qty", "quantity", "rel_cols"));
        Assert.Equal(first.Id, plan.MigrationId);
        Assert.Equal("ALTER VIEW \"rel_cols\".\"products\" RENAME COLUMN \"qty\" TO \"quantity\"", Assert.Single(Assert.Single(plan.Steps).Statements));
        var second = await engine.RunAsync(plan);

        Assert.Equal(first.Id, second.Id);
        Assert.Equal(MigrationPhase.Expanded, second.Phase);
        Assert.Equal("sku, qty", second.Column);
        Assert.Equal("code, quantity", second.NewName);
        Assert.Equal("\"sku\" -> \"code\", \"qty\" -> \"quantity\"", second.Details["Renames"]);
        Assert.Single(await engine.GetMigrationsAsync(new MigrationQuery { Table = "products", ActiveOnly = true }));
        Assert.Contains((await engine.GetMigrationAsync(first.Id)).Events, e => e.Action.StartsWith("extend", StringComparison.Ordinal) && e.Sql!.Contains("RENAME COLUMN \"qty\" TO \"quantity\"", StringComparison.Ordinal));

        await using var v2 = await _db.OpenWithSearchPathAsync("rel_cols,public");
        Assert.Equal(1, await v2.ScalarAsync<int>("INSERT INTO products (code) VALUES ('new') RETURNING quantity"));
        Assert.Equal(11L, await v2.ScalarAsync<long>("SELECT count(*) FROM products WHERE code IS NOT NULL AND quantity > 0"));

        var contract = await engine.PlanContractVersionAsync("rel_cols");
        Assert.Equal(
            new[]
            {
                "DROP VIEW \"rel_cols\".\"products\"",
                "ALTER TABLE \"public\".\"products\" RENAME COLUMN \"sku\" TO \"code\"",
                "ALTER TABLE \"public\".\"products\" RENAME COLUMN \"qty\" TO \"quantity\"",
                "DROP SCHEMA \"rel_cols\"",
            },
            Assert.Single(contract.Steps).Statements);
        var completed = Assert.Single(await engine.RunVersionAsync(contract));

        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(11L, await v2.ScalarAsync<long>("SELECT count(*) FROM products WHERE code IS NOT NULL AND quantity > 0"));
        Assert.Equal(11L, await _db.ScalarAsync<long>("SELECT count(*) FROM public.products WHERE code IS NOT NULL AND quantity > 0"));
    }

    [Fact]
    public async Task Two_tables_share_a_version_schema_and_complete_together_in_one_transaction()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE customers (id serial PRIMARY KEY, full_name text NOT NULL);
            CREATE TABLE invoices (id serial PRIMARY KEY, customer_id int REFERENCES customers, total numeric NOT NULL DEFAULT 0);
            INSERT INTO customers (full_name) VALUES ('Ada'), ('Bob');
            INSERT INTO invoices (customer_id, total) VALUES (1, 10), (2, 20);
            """);
        var engine = Engines.For(_db);
        var c = await engine.RenameColumnByViewAsync("customers", "full_name", "name", "rel_tables");
        var i = await engine.RenameColumnByViewAsync("invoices", "total", "amount", "rel_tables");
        Assert.NotEqual(c.Id, i.Id);

        // One release uses both new names at once, joins included.
        await using var v2 = await _db.OpenWithSearchPathAsync("rel_tables,public");
        Assert.Equal("Ada 10", await v2.ScalarAsync<string>("SELECT c.name || ' ' || i.amount FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.id = 1"));
        await v2.ExecuteAsync("INSERT INTO invoices (customer_id) VALUES (2)");

        var plan = await engine.PlanContractVersionAsync("rel_tables");
        Assert.Null(plan.MigrationId);
        Assert.Equal("\"rel_tables\"", plan.Target);
        var step = Assert.Single(plan.Steps);
        Assert.Equal("DROP SCHEMA \"rel_tables\"", step.Statements[^1]);
        Assert.Contains("ALTER TABLE \"public\".\"customers\" RENAME COLUMN \"full_name\" TO \"name\"", step.Statements);
        Assert.Contains("ALTER TABLE \"public\".\"invoices\" RENAME COLUMN \"total\" TO \"amount\"", step.Statements);
        Assert.Throws<ArgumentException>(() => { _ = engine.RunAsync(plan).GetAwaiter().GetResult(); });

        var completed = await engine.RunVersionAsync(plan);

        Assert.Equal(new[] { c.Id, i.Id }, completed.Select(m => m.Id));
        Assert.All(completed, m => Assert.Equal(MigrationPhase.Completed, m.Phase));
        Assert.Equal("Ada 10", await v2.ScalarAsync<string>("SELECT c.name || ' ' || i.amount FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.id = 1"));
        Assert.False(await _db.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'rel_tables')"));

        // Both migrations record the same single transaction's SQL.
        var sqlC = (await engine.GetMigrationAsync(c.Id)).Events.Single(e => e.ToPhase == "completed").Sql;
        var sqlI = (await engine.GetMigrationAsync(i.Id)).Events.Single(e => e.ToPhase == "completed").Sql;
        Assert.Equal(sqlC, sqlI);
        Assert.Equal("VersionNotFound", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanContractVersionAsync("rel_tables"))).ErrorId);
    }

    [Fact]
    public async Task Completing_one_table_of_a_version_keeps_the_schema_for_the_others()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE shops (id int PRIMARY KEY, title text);
            CREATE TABLE staff (id int PRIMARY KEY, nick text);
            INSERT INTO shops VALUES (1, 's'); INSERT INTO staff VALUES (1, 'n');
            """);
        var engine = Engines.For(_db);
        var shops = await engine.RenameColumnByViewAsync("shops", "title", "label", "rel_partial");
        var staff = await engine.RenameColumnByViewAsync("staff", "nick", "handle", "rel_partial");

        var plan = await engine.PlanContractAsync(shops.Id);
        Assert.DoesNotContain(plan.Steps[0].Statements, s => s.StartsWith("DROP SCHEMA", StringComparison.Ordinal));
        await engine.RunAsync(plan);

        await using var v2 = await _db.OpenWithSearchPathAsync("rel_partial,public");
        Assert.Equal("s n", await v2.ScalarAsync<string>("SELECT (SELECT label FROM shops) || ' ' || (SELECT handle FROM staff)"));

        var rest = Assert.Single(await engine.CompleteVersionAsync("rel_partial"));
        Assert.Equal(staff.Id, rest.Id);
        Assert.False(await _db.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'rel_partial')"));
    }

    [Fact]
    public async Task Undoing_a_version_drops_its_views_and_schema_and_changes_no_table()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE parts (id int PRIMARY KEY, part_no text, weight int);
            CREATE TABLE bins (id int PRIMARY KEY, place text);
            """);
        var engine = Engines.For(_db);
        await engine.RenameColumnByViewAsync("parts", "part_no", "number", "rel_undo");
        await engine.RenameColumnByViewAsync("parts", "weight", "grams", "rel_undo");
        await engine.RenameColumnByViewAsync("bins", "place", "location", "rel_undo");

        var undone = await engine.UndoVersionAsync("rel_undo");

        Assert.Equal(2, undone.Count);
        Assert.All(undone, m => Assert.Equal(MigrationPhase.Undone, m.Phase));
        Assert.False(await _db.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'rel_undo')"));
        Assert.Equal(2L, await _db.ScalarAsync<long>("SELECT count(*) FROM information_schema.columns WHERE table_name = 'parts' AND column_name IN ('part_no', 'weight')"));
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM information_schema.columns WHERE table_name = 'bins' AND column_name = 'place'"));
    }

    [Fact]
    public async Task A_version_is_completed_only_when_every_migration_in_it_is_ready()
    {
        await _db.ExecuteAsync("CREATE TABLE gadgets (id int PRIMARY KEY, tag text); CREATE TABLE widgets (id int PRIMARY KEY, tag text);");
        var engine = Engines.For(_db);
        var gadgets = await engine.RenameColumnByViewAsync("gadgets", "tag", "label", "rel_ready");
        await engine.RenameColumnByViewAsync("widgets", "tag", "label", "rel_ready");
        var plan = await engine.PlanContractVersionAsync("rel_ready");

        // The version changed after planning (one table left it): running the old plan is refused.
        await engine.UndoAsync(gadgets.Id);
        var changed = await Assert.ThrowsAsync<ZdtException>(() => engine.RunVersionAsync(plan));
        Assert.Equal("PlanChanged", changed.ErrorId);
        Assert.Equal("widgets", (await _db.ScalarAsync<string>("SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'tag' AND table_name = 'widgets'")));

        // A lock held by the application makes the contract wait and retry, not fail.
        await using var holder = await _db.OpenAsync();
        await holder.ExecuteAsync("BEGIN; SELECT count(*) FROM widgets;");
        var contract = engine.CompleteVersionAsync("rel_ready");
        await Task.Delay(500);
        Assert.False(contract.IsCompleted);
        await holder.ExecuteAsync("COMMIT");
        var done = Assert.Single(await contract);
        Assert.Equal(MigrationPhase.Completed, done.Phase);
    }
}
