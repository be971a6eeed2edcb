using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>Invoke-SafeDdl: raw DDL through the lock-safe executor, with warnings for the known dangerous forms.</summary>
public class SafeDdlTests : IClassFixture<TestDatabase>
{
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(1);

    private readonly TestDatabase _db;

    public SafeDdlTests(TestDatabase db)
    {
        _db = db;
    }

    [Theory]
    [InlineData("ALTER TABLE t ALTER COLUMN c SET NOT NULL", "Set-ColumnNotNull")]
    [InlineData("alter table t alter c set not null, add column d int", "Set-ColumnNotNull")]
    [InlineData("CREATE INDEX i ON t (c)", "New-Index")]
    [InlineData("CREATE UNIQUE INDEX IF NOT EXISTS i ON ONLY s.t USING btree (lower(c))", "New-Index")]
    [InlineData("DROP INDEX i", "Remove-Index")]
    [InlineData("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES p (id)", "Add-ForeignKey")]
    [InlineData("ALTER TABLE t ADD CHECK (c > 0)", "Add-CheckConstraint")]
    [InlineData("ALTER TABLE t ADD CONSTRAINT k UNIQUE (c)", "Add-UniqueConstraint")]
    [InlineData("ALTER TABLE t ADD PRIMARY KEY (c)", "Add-UniqueConstraint")]
    [InlineData("ALTER TABLE t ALTER COLUMN c TYPE bigint", "Add-Column")]
    [InlineData("ALTER TABLE t ALTER c SET DATA TYPE bigint USING c::bigint", "Add-Column")]
    [InlineData("ALTER TABLE t RENAME TO u", "New-TableRename")]
    [InlineData("ALTER TABLE t RENAME COLUMN c TO d", "New-ColumnRename")]
    [InlineData("ALTER TABLE t ADD COLUMN c int REFERENCES p (id)", "Add-ForeignKey")]
    [InlineData("VACUUM FULL t", "ACCESS EXCLUSIVE")]
    [InlineData("REINDEX TABLE t", "CONCURRENTLY")]
    public void Dangerous_forms_are_named_with_the_safe_way(string sql, string safeWay)
    {
        var ddl = DdlClassifier.Classify(sql);

        Assert.Null(ddl.Refusal);
        var warning = Assert.Single(ddl.Warnings);
        Assert.Contains(safeWay, warning, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CREATE INDEX CONCURRENTLY i ON t (c)", false, LockLevel.ShareUpdateExclusive)]
    [InlineData("DROP INDEX CONCURRENTLY IF EXISTS s.i", false, LockLevel.ShareUpdateExclusive)]
    [InlineData("REINDEX INDEX CONCURRENTLY i", false, LockLevel.ShareUpdateExclusive)]
    [InlineData("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES p (id) NOT VALID", true, LockLevel.ShareRowExclusive)]
    [InlineData("ALTER TABLE t VALIDATE CONSTRAINT f", true, LockLevel.ShareUpdateExclusive)]
    [InlineData("ALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX k", true, LockLevel.AccessExclusive)]
    [InlineData("ALTER TABLE t ADD COLUMN note text, ALTER COLUMN c DROP NOT NULL", true, LockLevel.AccessExclusive)]
    [InlineData("ALTER TABLE t ADD COLUMN c text DEFAULT 'CREATE INDEX; SET NOT NULL'", true, LockLevel.AccessExclusive)]
    [InlineData("COMMENT ON TABLE t IS 'ALTER COLUMN c TYPE int'", true, LockLevel.AccessExclusive)]
    [InlineData("VACUUM (ANALYZE) t", false, LockLevel.ShareUpdateExclusive)]
    public void Safe_forms_get_no_warning_and_concurrently_runs_outside_a_transaction(string sql, bool transactional, LockLevel lockLevel)
    {
        var ddl = DdlClassifier.Classify(sql);

        Assert.Null(ddl.Refusal);
        Assert.Empty(ddl.Warnings);
        Assert.Equal(transactional, ddl.Transactional);
        Assert.Equal(lockLevel, ddl.Lock);
        Assert.NotNull(ddl.Relation);
    }

    [Theory]
    [InlineData("ALTER TABLE a ADD x int; ALTER TABLE b ADD y int", "2 statements")]
    [InlineData("UPDATE t SET c = 1", "not DDL")]
    [InlineData("BEGIN", "not DDL")]
    [InlineData("  ;  ", "empty")]
    [InlineData("ALTER TABLE t ADD c text DEFAULT 'open", "unterminated")]
    public void What_cannot_be_run_is_refused(string sql, string reason)
        => Assert.Contains(reason, DdlClassifier.Classify(sql).Refusal, StringComparison.Ordinal);

    [Fact]
    public async Task Raw_ddl_waits_behind_a_blocker_without_stalling_the_application_and_reports_who_blocked()
    {
        await Tables.CreateOrdersAsync(_db, "orders_s1");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);
        var plan = await engine.PlanSafeDdlAsync(new SafeDdlRequest("ALTER TABLE orders_s1 ADD COLUMN note2 text;"));
        Assert.Equal(PhaseAction.Apply, plan.Action);
        Assert.Equal("\"public\".\"orders_s1\"", plan.Target);
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Contains("BEGIN;\nSET LOCAL lock_timeout = '100ms';\nLOCK TABLE \"public\".\"orders_s1\" IN ACCESS EXCLUSIVE MODE;", script, StringComparison.Ordinal);
        Assert.Contains(" is a table (on a view it would lock the base tables too)\nALTER TABLE orders_s1 ADD COLUMN note2 text;\nCOMMIT;", script, StringComparison.Ordinal);

        await using var workload = await Workload.StartAsync(_db, "orders_s1", 2000);
        await using var blocker = await LockHolder.HoldAsync(_db, "orders_s1", "ACCESS SHARE");
        var released = blocker.ReleaseAfterAsync(Hold);
        var migration = await engine.RunAsync(plan);
        await released;
        await workload.StopAsync();

        Assert.Empty(workload.Errors);
        Assert.True(workload.MaxServerLatency < Bound, $"an application statement waited {workload.MaxServerLatency.TotalMilliseconds:0} ms");
        Assert.Contains($"pid {blocker.Pid}", observer.AllText, StringComparison.Ordinal);
        Assert.Equal("SafeDdl", migration.Operation);
        Assert.Equal(MigrationPhase.Completed, migration.Phase);
        Assert.Equal("ALTER TABLE orders_s1 ADD COLUMN note2 text;", migration.Details["Sql"]);
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders_s1'::regclass AND attname = 'note2'"));
    }

    [Fact]
    public async Task Concurrently_runs_outside_a_transaction_block()
    {
        await Tables.CreateOrdersAsync(_db, "orders_s2", rows: 100);
        var engine = Engines.For(_db);

        var plan = await engine.PlanSafeDdlAsync(new SafeDdlRequest("CREATE INDEX CONCURRENTLY orders_s2_email ON orders_s2 (email)"));
        var step = Assert.Single(plan.Steps);
        Assert.False(step.Transactional);
        Assert.Equal(new[] { "DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"orders_s2_email\"" }, step.CleanupOnFailure);
        var migration = await engine.RunAsync(plan);

        Assert.Equal(MigrationPhase.Completed, migration.Phase);
        Assert.True(await _db.ScalarAsync<bool>("SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_s2_email'::regclass"));

        // The same with a build that fails: nothing INVALID is left.
        await _db.ExecuteAsync("UPDATE orders_s2 SET email = 'same' WHERE id <= 2");
        var failing = await engine.PlanSafeDdlAsync(new SafeDdlRequest("CREATE UNIQUE INDEX CONCURRENTLY orders_s2_email_key ON orders_s2 (email)"));
        await Assert.ThrowsAnyAsync<Exception>(() => engine.RunAsync(failing));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'orders_s2_email_key'"));
    }

    [Fact]
    public async Task The_server_decides_whether_a_raw_add_column_rewrites_and_the_warning_names_Add_Column()
    {
        await Tables.CreateOrdersAsync(_db, "orders_s3", rows: 10);
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var rewriting = await engine.PlanSafeDdlAsync(new SafeDdlRequest("ALTER TABLE orders_s3 ADD COLUMN token uuid DEFAULT gen_random_uuid()"));
        Assert.Contains(observer.Warnings, w => w.Contains("Add-Column", StringComparison.Ordinal) && w.Contains("\"token\"", StringComparison.Ordinal));
        Assert.Contains("WARNING:", rewriting.Steps[0].Why, StringComparison.Ordinal);

        var quiet = new RecordingObserver();
        var instant = await Engines.For(_db, quiet).PlanSafeDdlAsync(new SafeDdlRequest("ALTER TABLE orders_s3 ADD COLUMN status text DEFAULT 'new' NOT NULL"));
        Assert.Empty(quiet.Warnings);
        Assert.DoesNotContain("WARNING:", instant.Steps[0].Why, StringComparison.Ordinal);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders_s3'::regclass AND attname IN ('token', 'status')"));
    }

    [Fact]
    public async Task Statements_are_parsed_by_the_server_and_the_table_is_resolved_like_the_server_does()
    {
        await _db.ExecuteAsync("CREATE SCHEMA \"Sales\"; CREATE TABLE \"Sales\".\"Order Items\" (id int PRIMARY KEY, v int); CREATE TABLE orders_s4 (id int)");
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);

        async Task<ZdtException> Fails(SafeDdlRequest request) => await Assert.ThrowsAsync<ZdtException>(() => engine.PlanSafeDdlAsync(request));

        var syntax = await Fails(new SafeDdlRequest("ALTER TABLE orders_s4 ADDD COLUMN x int"));
        Assert.Equal("InvalidSql", syntax.ErrorId);
        Assert.Contains("syntax error at or near \"ADDD\"", syntax.Message, StringComparison.Ordinal);
        Assert.Equal("InvalidSql", (await Fails(new SafeDdlRequest("ALTER TABLE orders_s4 ADD a int; ALTER TABLE orders_s4 ADD b int"))).ErrorId);
        Assert.Equal("InvalidSql", (await Fails(new SafeDdlRequest("DELETE FROM orders_s4"))).ErrorId);
        Assert.Equal("TableNotFound", (await Fails(new SafeDdlRequest("ALTER TABLE Orders_S5 ADD COLUMN x int"))).ErrorId);
        Assert.Equal("RawDdlNeedsTable", (await Fails(new SafeDdlRequest("CREATE TYPE mood AS ENUM ('ok')"))).ErrorId);
        Assert.Equal("TableMismatch", (await Fails(new SafeDdlRequest("ALTER TABLE orders_s4 ADD COLUMN x int") { Table = "Order Items", Schema = "Sales" })).ErrorId);
        Assert.Equal("NameTaken", (await Fails(new SafeDdlRequest("CREATE INDEX CONCURRENTLY orders_s4 ON orders_s4 (id)"))).ErrorId);

        var quoted = await engine.PlanSafeDdlAsync(new SafeDdlRequest("ALTER TABLE \"Sales\".\"Order Items\" ADD COLUMN note text"));
        Assert.Equal("\"Sales\".\"Order Items\"", quoted.Target);
        var folded = await engine.PlanSafeDdlAsync(new SafeDdlRequest("alter table ORDERS_S4 add column note text"));
        Assert.Equal("\"public\".\"orders_s4\"", folded.Target);
        var named = await engine.PlanSafeDdlAsync(new SafeDdlRequest("CREATE TYPE mood AS ENUM ('ok')") { Table = "orders_s4" });
        Assert.Equal("\"public\".\"orders_s4\"", named.Target);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
    }
}
