using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>Set-ColumnNotNull: count first, CHECK NOT VALID + VALIDATE at expand, SET NOT NULL at contract.</summary>
public class NotNullTests : IClassFixture<TestDatabase>
{
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(1);

    private readonly TestDatabase _db;

    public NotNullTests(TestDatabase db)
    {
        _db = db;
    }

    private static Task<PhasePlan> Plan(MigrationEngine engine, string table, string column)
        => engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", table, column));

    [Fact]
    public async Task Not_null_is_set_under_load_without_a_locked_scan_and_matches_the_plain_statement()
    {
        await Tables.CreateOrdersAsync(_db, "orders_n1");
        await Tables.CreateOrdersAsync(_db, "orders_n1p");
        var engine = Engines.For(_db);

        var naive = await Tables.NaiveStallAsync(_db, "orders_n1p", "ALTER TABLE orders_n1p ALTER COLUMN customer_id SET NOT NULL", "ACCESS SHARE", Hold);
        Assert.True(naive > Bound, $"the naive statement stalled the application only {naive.TotalMilliseconds:0} ms");

        var plan = await Plan(engine, "orders_n1", "customer_id");
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Contains("ALTER TABLE \"public\".\"orders_n1\" ADD CONSTRAINT \"zdt_not_null_customer_id\" CHECK (\"customer_id\" IS NOT NULL) NOT VALID;", script, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE \"public\".\"orders_n1\" VALIDATE CONSTRAINT \"zdt_not_null_customer_id\";", script, StringComparison.Ordinal);
        Assert.Contains("SHARE UPDATE EXCLUSIVE", script, StringComparison.Ordinal);

        var (expanded, longest, _) = await Tables.UnderLoadAsync(_db, "orders_n1", "ACCESS SHARE", Hold, () => engine.RunAsync(plan));
        Assert.True(longest < Bound, $"expand: an application statement waited {longest.TotalMilliseconds:0} ms");
        Assert.Equal("SetColumnNotNull", expanded.Operation);
        Assert.Equal(MigrationPhase.Expanded, expanded.Phase);
        Assert.True(await _db.ScalarAsync<bool>("SELECT convalidated FROM pg_constraint WHERE conname = 'zdt_not_null_customer_id' AND conrelid = 'orders_n1'::regclass"));

        // From the expand on, a new NULL is refused.
        await using (var conn = await _db.OpenAsync())
        await using (var insert = new NpgsqlCommand("INSERT INTO orders_n1 (qty, customer_id) VALUES (1, NULL)", conn))
        {
            Assert.Equal(PostgresErrorCodes.CheckViolation, (await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync())).SqlState);
        }

        var contract = await engine.PlanContractAsync(expanded.Id);
        Assert.Equal(
            new[] { "ALTER TABLE \"public\".\"orders_n1\" ALTER COLUMN \"customer_id\" SET NOT NULL", "ALTER TABLE \"public\".\"orders_n1\" DROP CONSTRAINT \"zdt_not_null_customer_id\"" },
            Assert.Single(contract.Steps).Statements);
        var (completed, contractLongest, _) = await Tables.UnderLoadAsync(_db, "orders_n1", "ACCESS SHARE", Hold, () => engine.RunAsync(contract));

        Assert.True(contractLongest < Bound, $"contract: an application statement waited {contractLongest.TotalMilliseconds:0} ms");
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(await Tables.ColumnAsync(_db, "orders_n1p", "customer_id"), await Tables.ColumnAsync(_db, "orders_n1", "customer_id"));
        Assert.Equal(
            await _db.ScalarAsync<string>("SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'orders_n1p'::regclass"),
            (await _db.ScalarAsync<string>("SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'orders_n1'::regclass"))!.Replace("orders_n1", "orders_n1p", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Nulls_in_the_way_are_counted_and_nothing_is_changed()
    {
        await Tables.CreateOrdersAsync(_db, "orders_n2", rows: 300);
        await _db.ExecuteAsync("UPDATE orders_n2 SET email = NULL WHERE id % 50 = 0");
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        var error = await Assert.ThrowsAsync<ZdtException>(() => Plan(engine, "orders_n2", "email"));

        Assert.Equal("NullsPresent", error.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, error.Kind);
        Assert.Contains("6 row(s) of \"public\".\"orders_n2\" have NULL in \"email\"", error.Message, StringComparison.Ordinal);
        Assert.Equal(6L, error.TargetObject);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
        Assert.Empty(await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_n2" }));
    }

    [Fact]
    public async Task Undo_drops_the_check_and_nulls_are_allowed_again()
    {
        await Tables.CreateOrdersAsync(_db, "orders_n3", rows: 100);
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        var expanded = await engine.ApplyAsync(Plan(engine, "orders_n3", "customer_id"));
        var undone = await engine.UndoAsync(expanded.Id);

        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
        await _db.ExecuteAsync("INSERT INTO orders_n3 (qty, customer_id) VALUES (1, NULL)");
    }

    [Fact]
    public async Task Other_refusals_are_specific()
    {
        await Tables.CreateOrdersAsync(_db, "orders_n4", rows: 10);
        var engine = Engines.For(_db);

        Assert.Equal("AlreadyNotNull", (await Assert.ThrowsAsync<ZdtException>(() => Plan(engine, "orders_n4", "qty"))).ErrorId);
        Assert.Equal("ColumnNotFound", (await Assert.ThrowsAsync<ZdtException>(() => Plan(engine, "orders_n4", "Email"))).ErrorId);
        Assert.Equal("NoBackfillNeeded", (await Assert.ThrowsAsync<ZdtException>(async () =>
        {
            var migration = await engine.ApplyAsync(Plan(engine, "orders_n4", "email"));
            try
            {
                await engine.PlanBackfillAsync(migration.Id);
            }
            finally
            {
                await engine.UndoAsync(migration.Id);
            }
        })).ErrorId);
    }
}
