using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>Add-CheckConstraint, Add-ForeignKey, Add-UniqueConstraint, Add-PrimaryKey: check and foreign key NOT VALID + VALIDATE; unique and primary key through a concurrent index.</summary>
public class ConstraintTests : IClassFixture<TestDatabase>
{
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(1);

    private readonly TestDatabase _db;

    public ConstraintTests(TestDatabase db)
    {
        _db = db;
    }

    private Task<string?> ConstraintAsync(string table, string name)
        => _db.ScalarAsync<string>($"SELECT pg_get_constraintdef(oid) || ' validated=' || convalidated FROM pg_constraint WHERE conrelid = '{table}'::regclass AND conname = '{name}'");

    [Fact]
    public async Task A_foreign_key_is_added_under_load_and_matches_the_plain_statement()
    {
        await Tables.CreateOrdersAsync(_db, "orders_c1");
        await Tables.CreateOrdersAsync(_db, "orders_c1p");
        var engine = Engines.For(_db);

        // The plain ADD FOREIGN KEY takes SHARE ROW EXCLUSIVE, waits for the writing transaction and
        // then checks every row while it holds the lock; the application's writes queue behind it.
        var naive = await Tables.NaiveStallAsync(_db, "orders_c1p", "ALTER TABLE orders_c1p ADD CONSTRAINT orders_c1p_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id)", "ROW EXCLUSIVE", Hold);
        Assert.True(naive > Bound, $"the naive statement stalled the application only {naive.TotalMilliseconds:0} ms");

        var plan = await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "orders_c1", ConstraintKind.ForeignKey) { Columns = new[] { "customer_id" }, ReferencedTable = "customers" });
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Contains("ALTER TABLE \"public\".\"orders_c1\" ADD CONSTRAINT \"orders_c1_customer_id_fkey\" FOREIGN KEY (\"customer_id\") REFERENCES \"public\".\"customers\" (\"id\") NOT VALID;", script, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE \"public\".\"orders_c1\" VALIDATE CONSTRAINT \"orders_c1_customer_id_fkey\";", script, StringComparison.Ordinal);
        Assert.Equal(2, plan.Steps.Count);

        var (migration, longest, statements) = await Tables.UnderLoadAsync(_db, "orders_c1", "ROW EXCLUSIVE", Hold, () => engine.RunAsync(plan));

        Assert.True(longest < Bound, $"an application statement waited {longest.TotalMilliseconds:0} ms");
        Assert.True(statements > 50, $"only {statements} application statements ran");
        Assert.Equal("AddConstraint", migration.Operation);
        Assert.Equal(MigrationPhase.Completed, migration.Phase);
        Assert.Equal(await ConstraintAsync("orders_c1p", "orders_c1p_customer_id_fkey"), await ConstraintAsync("orders_c1", "orders_c1_customer_id_fkey"));
        Assert.EndsWith("validated=true", await ConstraintAsync("orders_c1", "orders_c1_customer_id_fkey"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_foreign_key_over_orphans_fails_with_the_count_and_leaves_nothing_behind()
    {
        await Tables.CreateOrdersAsync(_db, "orders_c2", rows: 200);
        await _db.ExecuteAsync("UPDATE orders_c2 SET customer_id = 99 WHERE id <= 4; UPDATE orders_c2 SET customer_id = NULL WHERE id = 5");
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.ApplyAsync(engine.PlanAddConstraintAsync(
            new AddConstraintRequest("public", "orders_c2", ConstraintKind.ForeignKey) { Columns = new[] { "customer_id" }, ReferencedTable = "customers", OnDelete = ForeignKeyAction.Cascade })));

        Assert.Equal("ConstraintViolated", error.ErrorId);
        Assert.Contains("4 row(s) of \"public\".\"orders_c2\" reference a (customer_id) that does not exist in \"public\".\"customers\"", error.Message, StringComparison.Ordinal);
        Assert.Equal(4L, error.TargetObject);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
        Assert.Equal(MigrationPhase.Failed, Assert.Single(await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_c2" })).Phase);
    }

    [Fact]
    public async Task A_check_is_added_under_load_and_a_violated_one_is_counted_and_dropped()
    {
        await Tables.CreateOrdersAsync(_db, "orders_c3");
        await Tables.CreateOrdersAsync(_db, "orders_c3p");
        var engine = Engines.For(_db);

        var naive = await Tables.NaiveStallAsync(_db, "orders_c3p", "ALTER TABLE orders_c3p ADD CONSTRAINT qty_positive CHECK (qty > 0)", "ACCESS SHARE", Hold);
        Assert.True(naive > Bound, $"the naive statement stalled the application only {naive.TotalMilliseconds:0} ms");
        var (added, longest, _) = await Tables.UnderLoadAsync(_db, "orders_c3", "ACCESS SHARE", Hold, () => engine.ApplyAsync(engine.PlanAddConstraintAsync(
            new AddConstraintRequest("public", "orders_c3", ConstraintKind.Check) { Name = "qty_positive", Check = "qty > 0" })));

        Assert.True(longest < Bound, $"an application statement waited {longest.TotalMilliseconds:0} ms");
        Assert.Equal(MigrationPhase.Completed, added.Phase);
        Assert.Equal(await ConstraintAsync("orders_c3p", "qty_positive"), await ConstraintAsync("orders_c3", "qty_positive"));

        await _db.ExecuteAsync("UPDATE orders_c3 SET note = 'long' WHERE id <= 3; UPDATE orders_c3 SET note = 'x' WHERE id = 4");
        var before = await Tables.SnapshotAsync(_db);
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.ApplyAsync(engine.PlanAddConstraintAsync(
            new AddConstraintRequest("public", "orders_c3", ConstraintKind.Check) { Check = "note IS NULL OR length(note) < 3" })));

        Assert.Equal("ConstraintViolated", error.ErrorId);
        Assert.Contains("3 row(s) of \"public\".\"orders_c3\" violate CHECK (note IS NULL OR length(note) < 3)", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
    }

    [Fact]
    public async Task A_unique_constraint_is_built_concurrently_under_load_then_attached_and_matches_the_plain_one()
    {
        await Tables.CreateOrdersAsync(_db, "orders_c4");
        await Tables.CreateOrdersAsync(_db, "orders_c4p");
        var engine = Engines.For(_db);

        var naive = await Tables.NaiveStallAsync(_db, "orders_c4p", "ALTER TABLE orders_c4p ADD CONSTRAINT orders_c4p_email_key UNIQUE (email)", "ROW EXCLUSIVE", Hold);
        Assert.True(naive > Bound, $"the naive statement stalled the application only {naive.TotalMilliseconds:0} ms");

        var plan = await engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "orders_c4", ConstraintKind.Unique) { Columns = new[] { "email" } });
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Contains("CREATE UNIQUE INDEX CONCURRENTLY \"orders_c4_email_key\" ON \"public\".\"orders_c4\" (\"email\");", script, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE \"public\".\"orders_c4\" ADD CONSTRAINT \"orders_c4_email_key\" UNIQUE USING INDEX \"orders_c4_email_key\";", script, StringComparison.Ordinal);

        var (migration, longest, _) = await Tables.UnderLoadAsync(_db, "orders_c4", "ROW EXCLUSIVE", Hold, () => engine.RunAsync(plan));

        Assert.True(longest < Bound, $"an application statement waited {longest.TotalMilliseconds:0} ms");
        Assert.Equal(MigrationPhase.Completed, migration.Phase);
        Assert.Equal(await ConstraintAsync("orders_c4p", "orders_c4p_email_key"), await ConstraintAsync("orders_c4", "orders_c4_email_key"));
        Assert.Equal(
            (await _db.ScalarAsync<string>("SELECT pg_get_indexdef('orders_c4p_email_key'::regclass)"))!.Replace("orders_c4p", "orders_c4", StringComparison.Ordinal),
            await _db.ScalarAsync<string>("SELECT pg_get_indexdef('orders_c4_email_key'::regclass)"));
    }

    [Fact]
    public async Task A_unique_constraint_over_duplicates_fails_with_the_count_and_leaves_no_index()
    {
        await Tables.CreateOrdersAsync(_db, "orders_c5", rows: 100);
        await _db.ExecuteAsync("UPDATE orders_c5 SET email = 'same@example.com' WHERE id <= 3");
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.ApplyAsync(engine.PlanAddConstraintAsync(
            new AddConstraintRequest("public", "orders_c5", ConstraintKind.Unique) { Columns = new[] { "email" } })));

        Assert.Equal("DuplicateKeys", error.ErrorId);
        Assert.Contains("1 value(s) of (\"email\") occur more than once in \"public\".\"orders_c5\" (3 rows)", error.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_index WHERE NOT indisvalid"));
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
    }

    [Fact]
    public async Task A_primary_key_needs_not_null_columns_and_then_goes_through_the_safe_path()
    {
        await _db.ExecuteAsync("CREATE TABLE keyless_c6 (code text, v int); INSERT INTO keyless_c6 SELECT 'k' || g, g FROM generate_series(1, 500) g;");
        var engine = Engines.For(_db);
        var request = new AddConstraintRequest("public", "keyless_c6", ConstraintKind.PrimaryKey) { Columns = new[] { "code" } };

        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanAddConstraintAsync(request));
        Assert.Equal("PrimaryKeyNeedsNotNull", refused.ErrorId);
        Assert.Contains("Set-ColumnNotNull", refused.Message, StringComparison.Ordinal);

        var notNull = await engine.ApplyAsync(engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", "keyless_c6", "code")));
        await engine.CompleteAsync(notNull.Id);
        var pk = await engine.ApplyAsync(engine.PlanAddConstraintAsync(request));

        Assert.Equal(MigrationPhase.Completed, pk.Phase);
        Assert.Equal("PRIMARY KEY (code) validated=true", await ConstraintAsync("keyless_c6", "keyless_c6_pkey"));
        Assert.Equal("PrimaryKeyExists", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanAddConstraintAsync(request with { Name = "another_pkey" }))).ErrorId);
    }

    [Fact]
    public async Task Bad_constraint_definitions_are_refused_before_anything_runs()
    {
        await Tables.CreateOrdersAsync(_db, "orders_c7", rows: 10);
        await _db.ExecuteAsync("CREATE TABLE nokey_c7 (id int)");
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);
        async Task<ZdtException> Fails(AddConstraintRequest request) => await Assert.ThrowsAsync<ZdtException>(() => engine.PlanAddConstraintAsync(request));
        var check = new AddConstraintRequest("public", "orders_c7", ConstraintKind.Check);
        var fk = new AddConstraintRequest("public", "orders_c7", ConstraintKind.ForeignKey) { Columns = new[] { "customer_id" } };

        Assert.Equal("NoCheckExpression", (await Fails(check)).ErrorId);
        Assert.Contains("column \"nope\" does not exist", (await Fails(check with { Check = "nope > 0" })).Message, StringComparison.Ordinal);
        Assert.Contains("cannot use subquery in check constraint", (await Fails(check with { Check = "qty > (SELECT 1)" })).Message, StringComparison.Ordinal);
        Assert.Equal("NameTaken", (await Fails(check with { Check = "qty > 0", Name = "orders_c7_pkey" })).ErrorId);
        Assert.Equal("IncompleteForeignKey", (await Fails(fk)).ErrorId);
        Assert.Equal("TableNotFound", (await Fails(fk with { ReferencedTable = "nope" })).ErrorId);
        Assert.Equal("IncompleteForeignKey", (await Fails(fk with { ReferencedTable = "nokey_c7" })).ErrorId);
        Assert.Contains("no unique constraint matching given keys", (await Fails(fk with { ReferencedTable = "nokey_c7", ReferencedColumns = new[] { "id" } })).Message, StringComparison.Ordinal);
        Assert.Contains("incompatible types", (await Fails(fk with { Columns = new[] { "email" }, ReferencedTable = "customers" })).Message, StringComparison.Ordinal);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
    }
}
