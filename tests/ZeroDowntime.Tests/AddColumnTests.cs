using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>Add-Column against a real PostgreSQL: instant when the server can, else nullable + default + backfill + NOT NULL at contract.</summary>
public class AddColumnTests : IClassFixture<TestDatabase>
{
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(1);

    private readonly TestDatabase _db;

    public AddColumnTests(TestDatabase db)
    {
        _db = db;
    }

    private static Task<PhasePlan> Plan(MigrationEngine engine, string table, string column, string type, string? @default = null, bool notNull = false)
        => engine.PlanAddColumnAsync(new AddColumnRequest("public", table, column, type, @default, notNull));

    private Task<long> FileNodeAsync(string table) => _db.ScalarAsync<long>($"SELECT pg_relation_filenode('{table}')::bigint");

    [Fact]
    public async Task A_non_volatile_default_with_not_null_is_added_instantly_under_load_and_matches_the_plain_statement()
    {
        await Tables.CreateOrdersAsync(_db, "orders_a1");
        await Tables.CreateOrdersAsync(_db, "orders_a1p");
        var engine = Engines.For(_db);

        // The plain statement is instant too, but it waits for its ACCESS EXCLUSIVE lock without a
        // timeout, and every write of the application queues behind it for as long as the blocker holds on.
        var naive = await Tables.NaiveStallAsync(_db, "orders_a1p", "ALTER TABLE orders_a1p ADD COLUMN status varchar(20) DEFAULT 'pending' NOT NULL", "ACCESS SHARE", Hold);
        Assert.True(naive > Bound, $"the naive statement stalled the application only {naive.TotalMilliseconds:0} ms");

        var fileNode = await FileNodeAsync("orders_a1");
        var (migration, longest, statements) = await Tables.UnderLoadAsync(_db, "orders_a1", "ACCESS SHARE", Hold, () => engine.ApplyAsync(Plan(engine, "orders_a1", "status", "varchar(20)", "'pending'", notNull: true)));

        Assert.True(longest < Bound, $"an application statement waited {longest.TotalMilliseconds:0} ms");
        Assert.True(statements > 50, $"only {statements} application statements ran");
        Assert.Equal("AddColumn", migration.Operation);
        Assert.Equal("Instant", migration.Strategy);
        Assert.Equal(MigrationPhase.Expanded, migration.Phase);
        Assert.Equal("status", migration.Column);
        Assert.Equal(fileNode, await FileNodeAsync("orders_a1"));
        Assert.Equal(await Tables.ColumnAsync(_db, "orders_a1p", "status"), await Tables.ColumnAsync(_db, "orders_a1", "status"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a1 WHERE status IS DISTINCT FROM 'pending'"));

        // Nothing is left to do at contract but to release the table.
        Assert.Empty((await engine.PlanContractAsync(migration.Id)).Steps);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
    }

    [Fact]
    public async Task A_volatile_default_is_backfilled_so_each_row_gets_its_own_value_and_not_null_comes_at_contract()
    {
        await Tables.CreateOrdersAsync(_db, "orders_a2", rows: 3000);
        await Tables.CreateOrdersAsync(_db, "orders_a2p", rows: 3000);
        var engine = Engines.For(_db);
        var fileNode = await FileNodeAsync("orders_a2");

        var plan = await Plan(engine, "orders_a2", "token", "uuid", "gen_random_uuid()", notNull: true);
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Contains("ALTER TABLE \"public\".\"orders_a2\" ADD COLUMN \"token\" uuid;\nALTER TABLE \"public\".\"orders_a2\" ALTER COLUMN \"token\" SET DEFAULT gen_random_uuid();", script, StringComparison.Ordinal);

        var (expanded, longest, _) = await Tables.UnderLoadAsync(_db, "orders_a2", "ACCESS SHARE", Hold, () => engine.RunAsync(plan), rows: 3000);
        Assert.True(longest < Bound, $"expand: an application statement waited {longest.TotalMilliseconds:0} ms");
        Assert.Equal("Backfill", expanded.Strategy);
        Assert.Equal(fileNode, await FileNodeAsync("orders_a2"));

        // The backfill runs while the application keeps inserting (new rows get the default) and updating.
        await using (var workload = await Workload.StartAsync(_db, "orders_a2", 3000))
        {
            var backfill = await engine.PlanBackfillAsync(expanded.Id);
            Assert.Contains("\"token\" = DEFAULT", string.Join("\n", backfill.Steps[0].Statements), StringComparison.Ordinal);
            var backfilled = await engine.RunBackfillAsync(backfill, new BackfillOptions { BatchSize = 250 });
            Assert.Equal(MigrationPhase.Backfilled, backfilled.Phase);
            await workload.StopAsync();
            Assert.Empty(workload.Errors);
            Assert.True(workload.MaxServerLatency < Bound, $"backfill: an application statement waited {workload.MaxServerLatency.TotalMilliseconds:0} ms");
        }

        Assert.True(await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a2 WHERE id > 3000") > 0, "the application inserted rows during the test");
        var (completed, contractLongest, _) = await Tables.UnderLoadAsync(_db, "orders_a2", "ACCESS SHARE", Hold, () => engine.CompleteAsync(expanded.Id), rows: 3000);

        Assert.True(contractLongest < Bound, $"contract: an application statement waited {contractLongest.TotalMilliseconds:0} ms");
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a2 WHERE token IS NULL"));
        Assert.Equal(
            await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a2"),
            await _db.ScalarAsync<long>("SELECT count(DISTINCT token) FROM orders_a2"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_constraint WHERE conrelid = 'orders_a2'::regclass AND contype = 'c'"));
        Assert.Equal(fileNode, await FileNodeAsync("orders_a2"));

        await _db.ExecuteAsync("ALTER TABLE orders_a2p ADD COLUMN token uuid DEFAULT gen_random_uuid() NOT NULL");
        Assert.Equal(await Tables.ColumnAsync(_db, "orders_a2p", "token"), await Tables.ColumnAsync(_db, "orders_a2", "token"));

        var events = (await engine.GetMigrationAsync(expanded.Id)).Events;
        Assert.Contains(events, e => e.ToPhase == "completed" && e.Sql!.Contains("SET NOT NULL", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Sql?.Contains("VALIDATE CONSTRAINT", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task Contract_refuses_with_the_count_while_rows_are_null_and_a_second_backfill_fixes_them()
    {
        await Tables.CreateOrdersAsync(_db, "orders_a3", rows: 500);
        var engine = Engines.For(_db);
        var expanded = await engine.ApplyAsync(Plan(engine, "orders_a3", "ref", "text", "md5(random()::text)", notNull: true));
        Assert.Equal("Backfill", expanded.Strategy);

        // Contract before the backfill is out of order.
        Assert.Equal("PhaseOutOfOrder", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanContractAsync(expanded.Id))).ErrorId);

        await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id));

        // The application writes explicit NULLs after the backfill: the contract counts them and refuses before any DDL.
        await _db.ExecuteAsync("UPDATE orders_a3 SET ref = NULL WHERE id <= 7");
        var before = await Tables.SnapshotAsync(_db);
        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.CompleteAsync(expanded.Id));
        Assert.Equal("NullsPresent", refused.ErrorId);
        Assert.Contains("7 row(s)", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Invoke-Backfill", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));

        var again = await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id));
        Assert.Equal(MigrationPhase.Backfilled, again.Phase);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(expanded.Id)).Phase);
        Assert.Equal("text notnull=true default=md5((random())::text)", await Tables.ColumnAsync(_db, "orders_a3", "ref"));
    }

    [Fact]
    public async Task Undo_drops_the_column_and_leaves_the_table_as_it_was()
    {
        await Tables.CreateOrdersAsync(_db, "orders_a4", rows: 1000);
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        var expanded = await engine.ApplyAsync(Plan(engine, "orders_a4", "created", "timestamptz", "clock_timestamp()", notNull: true));
        await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id), new BackfillOptions { BatchSize = 100, MaxBatches = 3 });
        var undoPlan = await engine.PlanUndoAsync(expanded.Id);
        Assert.Contains("ALTER TABLE \"public\".\"orders_a4\" DROP COLUMN \"created\";", undoPlan.ToScript(engine.Options.LockTimeout), StringComparison.Ordinal);

        var undone = await engine.RunAsync(undoPlan);

        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));

        // The table is free again, and an instant addition needs nothing from the undone one.
        var again = await engine.ApplyAsync(Plan(engine, "orders_a4", "created", "timestamptz", "now()"));
        Assert.Equal("Instant", again.Strategy);
        await engine.UndoAsync(again.Id);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
    }

    [Fact]
    public async Task WhatIf_shows_the_exact_sql_and_the_ledger_records_it()
    {
        await Tables.CreateOrdersAsync(_db, "orders_a5", rows: 10);
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        var plan = await Plan(engine, "orders_a5", "Status Code", "varchar(20)", "'new'", notNull: true);
        var script = plan.ToScript(engine.Options.LockTimeout);

        Assert.Equal(before, await Tables.SnapshotAsync(_db));
        Assert.Equal(PhaseAction.Expand, plan.Action);
        var statement = Assert.Single(Assert.Single(plan.Steps).Statements);
        Assert.Equal("ALTER TABLE \"public\".\"orders_a5\" ADD COLUMN \"Status Code\" character varying(20) DEFAULT 'new'::character varying NOT NULL", statement);
        Assert.Contains("BEGIN;\nSET LOCAL lock_timeout = '100ms';\nLOCK TABLE \"public\".\"orders_a5\" IN ACCESS EXCLUSIVE MODE;", script, StringComparison.Ordinal);
        Assert.Contains(" is a table (on a view it would lock the base tables too)\n" + statement + ";\nCOMMIT;", script, StringComparison.Ordinal);
        Assert.Contains("ACCESS EXCLUSIVE", script, StringComparison.Ordinal);

        var migration = await engine.RunAsync(plan);
        var events = (await engine.GetMigrationAsync(migration.Id)).Events;
        Assert.Contains(events, e => e.ToPhase == "expanded" && e.Sql == statement + ";");
        Assert.Equal("\"Status Code\"", migration.Details["Column"]);
        Assert.Equal("'new'::character varying", migration.Details["Default"]);
        await engine.UndoAsync(migration.Id);
    }

    [Fact]
    public async Task Bad_input_is_refused_before_any_ddl_with_a_clear_reason()
    {
        await Tables.CreateOrdersAsync(_db, "orders_a6", rows: 10);
        await _db.ExecuteAsync("CREATE DOMAIN positive_int AS int CHECK (VALUE > 0)");
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        async Task<ZdtException> Fails(string column, string type, string? @default = null, bool notNull = false)
            => await Assert.ThrowsAsync<ZdtException>(() => Plan(engine, "orders_a6", column, type, @default, notNull));

        var unknownType = await Fails("x", "nosuchtype");
        Assert.Equal("InvalidSql", unknownType.ErrorId);
        Assert.Contains("type \"nosuchtype\" does not exist", unknownType.Message, StringComparison.Ordinal);
        Assert.Contains("syntax error", (await Fails("x", "int", "1 +")).Message, StringComparison.Ordinal);
        Assert.Contains("a ';'", (await Fails("x", "int", "1; DROP TABLE orders_a6")).Message, StringComparison.Ordinal);
        Assert.Contains("unbalanced parentheses", (await Fails("x", "int", "1) NOT NULL, ADD COLUMN y int DEFAULT (2")).Message, StringComparison.Ordinal);
        Assert.Contains("a comment", (await Fails("x", "int", "1 --")).Message, StringComparison.Ordinal);
        Assert.Contains("cannot use column reference", (await Fails("x", "int", "qty + 1")).Message, StringComparison.Ordinal);
        Assert.Contains("-NotNull", (await Fails("x", "int NOT NULL")).Message, StringComparison.Ordinal);
        Assert.Contains("-Default", (await Fails("x", "int DEFAULT 5")).Message, StringComparison.Ordinal);
        Assert.Equal("NotNullNeedsDefault", (await Fails("x", "int", notNull: true)).ErrorId);
        Assert.Equal("DefaultIsNull", (await Fails("x", "int", "NULL", notNull: true)).ErrorId);
        Assert.Equal("ColumnExists", (await Fails("qty", "int")).ErrorId);
        Assert.Equal("RewriteUnavoidable", (await Fails("x", "positive_int")).ErrorId);
        Assert.Equal("TableNotFound", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanAddColumnAsync(new AddColumnRequest("public", "nope", "x", "int")))).ErrorId);
        Assert.Equal("IdentifierTooLong", (await Fails(new string('c', 64), "int")).ErrorId);

        Assert.Equal(before, await Tables.SnapshotAsync(_db));
    }

    [Fact]
    public async Task Asking_the_server_uses_up_no_sequence_value_and_nextval_is_backfilled()
    {
        await Tables.CreateOrdersAsync(_db, "orders_a7", rows: 100);
        await _db.ExecuteAsync("CREATE SEQUENCE ticket_seq");
        var engine = Engines.For(_db);

        var plan = await Plan(engine, "orders_a7", "ticket", "bigint", "nextval('ticket_seq')", notNull: true);

        Assert.False(await _db.ScalarAsync<bool>("SELECT is_called FROM ticket_seq"));
        Assert.Contains("SET DEFAULT nextval('ticket_seq'::regclass)", plan.ToScript(engine.Options.LockTimeout), StringComparison.Ordinal);
        var migration = await engine.RunAsync(plan);
        await engine.RunBackfillAsync(await engine.PlanBackfillAsync(migration.Id));
        await engine.CompleteAsync(migration.Id);
        Assert.Equal(100L, await _db.ScalarAsync<long>("SELECT count(DISTINCT ticket) FROM orders_a7"));
    }

    [Fact]
    public async Task The_addition_holds_the_table_like_any_migration_but_an_index_may_still_be_built()
    {
        await Tables.CreateOrdersAsync(_db, "orders_a8", rows: 100);
        var engine = Engines.For(_db);
        var migration = await engine.ApplyAsync(Plan(engine, "orders_a8", "status", "text", "'new'"));

        var busy = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", "orders_a8", "email")));
        Assert.Equal("MigrationAlreadyActive", busy.ErrorId);
        Assert.Contains($"migration {migration.Id}", busy.Message, StringComparison.Ordinal);

        // The seed's last step: index the new column while its migration is still open.
        var index = await engine.ApplyAsync(engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "orders_a8") { Columns = new[] { "status" } }));
        Assert.Equal(MigrationPhase.Completed, index.Phase);
        Assert.Equal(MigrationPhase.Expanded, (await engine.GetMigrationAsync(migration.Id)).Phase);
        await engine.CompleteAsync(migration.Id);
    }

    [Fact]
    public async Task A_concurrent_insert_during_expand_never_sees_an_error()
    {
        // The column appears between two statements of the application; its inserts name only the
        // old columns and get the default, whichever side of the change they land on.
        await Tables.CreateOrdersAsync(_db, "orders_a9", rows: 100);
        var engine = Engines.For(_db);
        await using var workload = await Workload.StartAsync(_db, "orders_a9", 100);
        var migration = await engine.ApplyAsync(Plan(engine, "orders_a9", "status", "text", "'new'", notNull: true));
        await Task.Delay(200);
        await workload.StopAsync();

        Assert.Empty(workload.Errors);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a9 WHERE status IS NULL"));
        await engine.CompleteAsync(migration.Id);
        await using var conn = await _db.OpenAsync();
        await using var insert = new NpgsqlCommand("INSERT INTO orders_a9 (qty, status) VALUES (1, NULL)", conn);
        Assert.Equal(PostgresErrorCodes.NotNullViolation, (await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync())).SqlState);
    }
}
