using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>New-ColumnTypeChange against a real PostgreSQL: the copy (integer to bigint on a referenced primary key), a conversion that fails, the in-place path, undo and resume.</summary>
public class ColumnTypeChangeTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public ColumnTypeChangeTests(TestDatabase db)
    {
        _db = db;
    }

    /// <summary>A parent whose integer primary key has a comment, a statistics target, a column grant, a check, a partial and an expression index and a unique constraint, referenced by a child's foreign key.</summary>
    private async Task CreateParentAndChildAsync(string schema, int rows = 3000)
    {
        await _db.ExecuteAsync($"""
            CREATE SCHEMA {schema};
            CREATE TABLE {schema}.parent (id integer PRIMARY KEY CHECK (id > 0), code text NOT NULL, payload text, UNIQUE (code, id));
            COMMENT ON COLUMN {schema}.parent.id IS 'the key';
            ALTER TABLE {schema}.parent ALTER COLUMN id SET STATISTICS 300;
            GRANT SELECT (id) ON {schema}.parent TO PUBLIC;
            CREATE INDEX parent_recent ON {schema}.parent (id) WHERE id > 1000;
            CREATE INDEX parent_mod ON {schema}.parent ((id % 7));
            CREATE TABLE {schema}.child (id serial PRIMARY KEY, parent_id integer NOT NULL REFERENCES {schema}.parent (id) ON DELETE CASCADE, note text);
            INSERT INTO {schema}.parent SELECT g, 'c' || g, 'p' || g FROM generate_series(1, {rows}) g;
            INSERT INTO {schema}.child (parent_id, note) SELECT g, 'n' || g FROM generate_series(1, {rows}, 3) g;
            """);
    }

    private static async Task<Migration> ChangeTypeAsync(MigrationEngine engine, string schema, string table, string column, string type, string? usingExpression = null, bool cascade = false)
        => await engine.RunAsync(await engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest(schema, table, column, type) { Using = usingExpression, Cascade = cascade }));

    [Fact]
    public async Task Integer_to_bigint_on_a_referenced_primary_key_under_two_writers_loses_nothing_and_ends_as_a_plain_alter()
    {
        await CreateParentAndChildAsync("tc_mod");
        await CreateParentAndChildAsync("tc_twin");
        await _db.ExecuteAsync("ALTER TABLE tc_twin.parent ALTER COLUMN id TYPE bigint; ALTER TABLE tc_twin.child ALTER COLUMN parent_id TYPE bigint");
        var engine = Engines.For(_db);
        await using var v1 = await KeyWriter.StartAsync(_db, "tc_mod", firstId: 100_000, seed: 1);
        await using var v2 = await KeyWriter.StartAsync(_db, "tc_mod", firstId: 500_000, seed: 2);
        await Task.Delay(300);

        var refused = await Assert.ThrowsAsync<ZdtException>(() => ChangeTypeAsync(engine, "tc_mod", "parent", "id", "bigint"));
        Assert.Equal("ColumnReferenced", refused.ErrorId);
        Assert.Contains("child_parent_id_fkey", refused.Message, StringComparison.Ordinal);

        var migration = await ChangeTypeAsync(engine, "tc_mod", "parent", "id", "bigint", cascade: true);
        Assert.Equal("Copy", migration.Strategy);
        Assert.Equal("bigint", await _db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tc_mod.child'::regclass AND attname = 'zdt_parent_id_new'"));

        // The referencing table is held by this migration: no other migration may start on it.
        var held = await Assert.ThrowsAsync<ZdtException>(() => ChangeTypeAsync(engine, "tc_mod", "child", "id", "bigint"));
        Assert.Equal("MigrationAlreadyActive", held.ErrorId);
        Assert.Contains($"migration {migration.Id}", held.Message, StringComparison.Ordinal);
        await Task.Delay(300);
        await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 200 });
        await Task.Delay(300);
        var parity = await engine.TestColumnParityAsync(migration.Id);
        Assert.True(parity.InParity, parity.ToString());
        await Task.Delay(300);
        var completed = await engine.CompleteAsync(migration.Id);
        await Task.Delay(500);
        await v1.StopAsync();
        await v2.StopAsync();

        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Empty(v1.Errors);
        Assert.Empty(v2.Errors);
        Assert.True(v1.Statements > 50 && v2.Statements > 50, $"statements: v1 {v1.Statements}, v2 {v2.Statements}");
        await v1.AssertNothingLostAsync(_db);
        await v2.AssertNothingLostAsync(_db);
        Assert.Equal("bigint", await _db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tc_mod.parent'::regclass AND attname = 'id'"));
        Assert.Equal("bigint", await _db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tc_mod.child'::regclass AND attname = 'parent_id'"));

        Assert.Equal(await PgDumpShape.OfAsync(_db, "tc_twin", "parent"), await PgDumpShape.OfAsync(_db, "tc_mod", "parent"));
        Assert.Equal(await PgDumpShape.OfAsync(_db, "tc_twin", "child"), await PgDumpShape.OfAsync(_db, "tc_mod", "child"));
    }

    [Fact]
    public async Task A_conversion_that_fails_for_some_rows_does_not_fail_the_backfill_and_parity_and_contract_refuse_with_the_count()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE tc_text (id int PRIMARY KEY, qty text);
            INSERT INTO tc_text SELECT g, g::text FROM generate_series(1, 1000) g;
            UPDATE tc_text SET qty = 'twelve' WHERE id IN (7, 70);
            """);
        var engine = Engines.For(_db);
        var migration = await ChangeTypeAsync(engine, "public", "tc_text", "qty", "integer", usingExpression: "trim(qty)::integer");
        await _db.ExecuteAsync("INSERT INTO tc_text VALUES (5000, 'oops'), (5001, ' 42 ')");
        var backfilled = await engine.BackfillAsync(migration.Id);
        Assert.Equal(MigrationPhase.Backfilled, backfilled.Phase);

        var parity = await engine.TestColumnParityAsync(migration.Id);
        Assert.Equal(3L, parity.Mismatches);
        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.CompleteAsync(migration.Id));
        Assert.Equal("PhaseOutOfOrder", refused.ErrorId);
        Assert.Equal(42L, await _db.ScalarAsync<long>("SELECT zdt_qty_new FROM tc_text WHERE id = 5001"));

        // Corrected through the column's own name, the trigger converts them; parity then holds and the contract runs.
        await _db.ExecuteAsync("UPDATE tc_text SET qty = '12' WHERE qty IN ('twelve', 'oops')");
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        await engine.CompleteAsync(migration.Id);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM tc_text WHERE qty IS NULL"));
        Assert.Equal(42L, await _db.ScalarAsync<long>("SELECT qty FROM tc_text WHERE id = 5001"));
    }

    [Fact]
    public async Task With_RejectUnconvertibleWrites_the_applications_unconvertible_write_fails_with_a_clear_message_and_the_backfill_still_counts()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE tc_strict (id int PRIMARY KEY, qty text);
            INSERT INTO tc_strict SELECT g, g::text FROM generate_series(1, 200) g;
            UPDATE tc_strict SET qty = 'bad' WHERE id = 3;
            """);
        var engine = Engines.For(_db);
        var migration = await engine.RunAsync(await engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest("public", "tc_strict", "qty", "integer") { Using = "qty::integer", RejectUnconvertibleWrites = true }));
        var refused = await Assert.ThrowsAsync<PostgresException>(() => _db.ExecuteAsync("UPDATE tc_strict SET qty = 'nine' WHERE id = 9"));
        Assert.Equal("22P02", refused.SqlState);
        Assert.Contains("RejectUnconvertibleWrites", refused.MessageText, StringComparison.Ordinal);
        Assert.Equal("9", await _db.ScalarAsync<string>("SELECT qty FROM tc_strict WHERE id = 9"));
        await _db.ExecuteAsync("INSERT INTO tc_strict VALUES (1000, '1000')");

        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(migration.Id)).Phase);
        Assert.Equal(1L, (await engine.TestColumnParityAsync(migration.Id)).Mismatches);
    }

    [Fact]
    public async Task Parity_failure_at_contract_names_the_unconvertible_rows()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE tc_bad (id int PRIMARY KEY, qty text);
            INSERT INTO tc_bad SELECT g, g::text FROM generate_series(1, 100) g;
            """);
        var engine = Engines.For(_db);
        var migration = await ChangeTypeAsync(engine, "public", "tc_bad", "qty", "integer", usingExpression: "qty::integer");
        await engine.BackfillAsync(migration.Id);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);

        // Verified, then the application writes a value that does not convert: the write succeeds (the shadow stays NULL), the contract refuses.
        await _db.ExecuteAsync("UPDATE tc_bad SET qty = 'x' WHERE id = 9");
        Assert.Null(await _db.ScalarAsync<int?>("SELECT zdt_qty_new FROM tc_bad WHERE id = 9"));
        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.CompleteAsync(migration.Id));
        Assert.Equal("ParityFailed", refused.ErrorId);
        Assert.Contains("1 row(s)", refused.Message, StringComparison.Ordinal);
        Assert.Contains("does not convert", refused.Message, StringComparison.Ordinal);
        Assert.Equal("text", await _db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tc_bad'::regclass AND attname = 'qty'"));
    }

    [Fact]
    public async Task A_change_the_server_makes_without_a_rewrite_is_one_catalog_step_with_no_trigger_and_no_backfill()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE tc_varchar (id int PRIMARY KEY, name varchar(50) NOT NULL);
            CREATE INDEX tc_varchar_name ON tc_varchar (name);
            INSERT INTO tc_varchar SELECT g, 'n' || g FROM generate_series(1, 1000) g;
            """);
        var before = await _db.ScalarAsync<long>("SELECT pg_relation_filenode('tc_varchar')::bigint");
        var engine = Engines.For(_db);
        var plan = await engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest("public", "tc_varchar", "name", "varchar(100)"));
        Assert.Single(plan.Steps);
        var migration = await engine.RunAsync(plan);
        Assert.Equal("InPlace", migration.Strategy);
        Assert.Equal("character varying(100)", await _db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tc_varchar'::regclass AND attname = 'name'"));
        Assert.Equal(before, await _db.ScalarAsync<long>("SELECT pg_relation_filenode('tc_varchar')::bigint"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tc_varchar'::regclass"));
        var noBackfill = await Assert.ThrowsAsync<ZdtException>(() => engine.BackfillAsync(migration.Id));
        Assert.Equal("PhaseOutOfOrder", noBackfill.ErrorId);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
    }

    [Theory]
    [InlineData("Expanded")]
    [InlineData("Backfilling")]
    [InlineData("BackfillingReferencing")]
    [InlineData("Backfilled")]
    [InlineData("Verified")]
    public async Task Undo_from_every_phase_leaves_the_table_as_before(string phase)
    {
        var schema = "tc_undo_" + phase.ToLowerInvariant();
        await CreateParentAndChildAsync(schema, rows: 1500);
        var before = await PgDumpShape.OfAsync(_db, schema, "parent");
        var beforeChild = await PgDumpShape.OfAsync(_db, schema, "child");
        var engine = Engines.For(_db);
        var migration = await ChangeTypeAsync(engine, schema, "parent", "id", "bigint", cascade: true);
        if (phase == "BackfillingReferencing")
        {
            // Stopped while walking the second table (the referencing one).
            var childOid = await _db.ScalarAsync<long>($"SELECT '{schema}.child'::regclass::oid::bigint");
            for (var runs = 0; runs < 40 && !(await _db.ScalarAsync<string?>($"SELECT backfill_checkpoint::text FROM zdt.migration WHERE id = {migration.Id}") ?? "").Contains($"\"table\": {childOid}", StringComparison.Ordinal); runs++)
            {
                await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100, MaxBatches = 1 });
            }

            Assert.InRange(await _db.ScalarAsync<long>($"SELECT count(*) FROM {schema}.child WHERE zdt_parent_id_new IS NULL"), 1, 499);
        }
        else if (phase != "Expanded")
        {
            await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 200, MaxBatches = phase == "Backfilling" ? 2 : null });
        }

        if (phase == "Verified")
        {
            Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        }

        Assert.Equal(phase.Replace("Referencing", "", StringComparison.Ordinal), (await engine.GetMigrationsAsync(new MigrationQuery { Id = migration.Id })).Single().Phase.ToString());
        var undone = await engine.UndoAsync(migration.Id);
        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        Assert.Equal(before, await PgDumpShape.OfAsync(_db, schema, "parent"));
        Assert.Equal(beforeChild, await PgDumpShape.OfAsync(_db, schema, "child"));
        Assert.Equal(0L, await _db.ScalarAsync<long>($"SELECT count(*) FROM pg_proc WHERE proname LIKE 'sync_' || '{schema}.parent'::regclass::oid || '%'"));
        Assert.Equal(0L, await _db.ScalarAsync<long>($"SELECT count(*) FROM pg_attribute WHERE attrelid IN ('{schema}.parent'::regclass, '{schema}.child'::regclass) AND attname LIKE 'zdt%' AND NOT attisdropped"));
        Assert.Equal(0L, await _db.ScalarAsync<long>($"SELECT count(*) FROM pg_proc WHERE proname LIKE 'sync_' || '{schema}.child'::regclass::oid || '%'"));
    }

    [Fact]
    public async Task Undo_after_a_contract_stopped_before_its_swap_leaves_the_table_and_the_referencing_table_as_before()
    {
        await CreateParentAndChildAsync("tc_undo_contracting", rows: 1500);
        var before = await PgDumpShape.OfAsync(_db, "tc_undo_contracting", "parent");
        var beforeChild = await PgDumpShape.OfAsync(_db, "tc_undo_contracting", "child");
        var engine = Engines.For(_db, options: Engines.Fast with { LockRetryTimeout = TimeSpan.FromSeconds(2) });
        var migration = await ChangeTypeAsync(engine, "tc_undo_contracting", "parent", "id", "bigint", cascade: true);
        await engine.BackfillAsync(migration.Id);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);

        // A reader of the referencing table stays in its transaction: every preparation step runs
        // (FK copy added and validated, NOT NULL check, old indexes dropped concurrently), the
        // swap cannot have its lock on the referencing table and gives up.
        await using (var reader = await _db.OpenAsync())
        {
            await using var tx = await reader.BeginTransactionAsync();
            await using (var read = new NpgsqlCommand("SELECT count(*) FROM tc_undo_contracting.child", reader, tx))
            {
                await read.ExecuteScalarAsync();
            }

            var failed = await Assert.ThrowsAsync<ZdtException>(() => engine.CompleteAsync(migration.Id));
            Assert.Equal("LockRetryTimeoutExceeded", failed.ErrorId);
            await tx.RollbackAsync();
        }

        Assert.Equal(MigrationPhase.Contracting, (await engine.GetMigrationsAsync(new MigrationQuery { Id = migration.Id })).Single().Phase);
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_constraint WHERE conrelid = 'tc_undo_contracting.child'::regclass AND conname = 'child_parent_id_fkey_zdt'"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'parent_recent' AND relnamespace = 'tc_undo_contracting'::regnamespace"));

        Assert.Equal(MigrationPhase.Undone, (await engine.UndoAsync(migration.Id)).Phase);
        Assert.Equal(before, await PgDumpShape.OfAsync(_db, "tc_undo_contracting", "parent"));
        Assert.Equal(beforeChild, await PgDumpShape.OfAsync(_db, "tc_undo_contracting", "child"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_index WHERE indrelid = 'tc_undo_contracting.parent'::regclass AND NOT indisvalid"));
    }

    /// <summary>
    /// Issue 14: the contract's one ACCESS EXCLUSIVE transaction must not read the tables (its
    /// length would grow with them): SET NOT NULL is proved by the validated CHECK, the primary key
    /// is attached to its built index, the foreign key copies are validated before. Counted by the
    /// server for the swap's own transaction (pg_stat_xact_user_tables, before and after its
    /// statements), on the table and the referencing table.
    /// </summary>
    [Fact]
    public async Task The_contracts_swap_reads_neither_the_table_nor_the_referencing_table()
    {
        await CreateParentAndChildAsync("tc_swap_scan", rows: 1500);
        var engine = Engines.For(_db);
        var migration = await ChangeTypeAsync(engine, "tc_swap_scan", "parent", "id", "bigint", cascade: true);
        await engine.BackfillAsync(migration.Id);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);

        // The preparation (FK copies added and validated, NOT NULL checks, early index drops) runs
        // as the engine would run it; the swap then runs alone, counted.
        var steps = (await engine.PlanContractAsync(migration.Id)).Steps;
        var swap = steps[^1];
        Assert.Equal(LockLevel.AccessExclusive, swap.Lock);
        Assert.Contains(swap.Statements, s => s.Contains("SET NOT NULL", StringComparison.Ordinal));
        Assert.Contains(swap.Statements, s => s.Contains("PRIMARY KEY USING INDEX", StringComparison.Ordinal));
        foreach (var statement in steps.SkipLast(1).SelectMany(s => s.Statements))
        {
            await _db.ExecuteAsync(statement);
        }

        // A backend of its own (no pooling): pg_stat_xact_* show a backend's counts not yet flushed
        // to the shared statistics, which on a pooled backend include the earlier work of other
        // statements (the foreign key's validation looks the parent up once per child row).
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_db.ConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using (var tx = await connection.BeginTransactionAsync())
        {
            var before = await ReadsAsync(connection, tx);
            foreach (var statement in swap.Statements)
            {
                await using var cmd = new NpgsqlCommand(statement, connection, tx);
                await cmd.ExecuteNonQueryAsync();
            }

            var after = await ReadsAsync(connection, tx);

            foreach (var (relation, counters) in after)
            {
                Assert.True(counters.Seq <= before.GetValueOrDefault(relation).Seq, $"{relation} was scanned sequentially by the swap");
                Assert.True(counters.Idx <= before.GetValueOrDefault(relation).Idx, $"{relation} was read by index by the swap");
            }

            await tx.RollbackAsync();
        }

        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);

        static async Task<Dictionary<string, (long Seq, long Idx)>> ReadsAsync(NpgsqlConnection connection, NpgsqlTransaction tx)
        {
            await using var cmd = new NpgsqlCommand("SELECT relname, seq_scan, coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE schemaname = 'tc_swap_scan'", connection, tx);
            await using var reader = await cmd.ExecuteReaderAsync();
            var reads = new Dictionary<string, (long Seq, long Idx)>();
            while (await reader.ReadAsync())
            {
                reads[reader.GetString(0)] = (reader.GetInt64(1), reader.GetInt64(2));
            }

            return reads;
        }
    }

    [Fact]
    public async Task An_interrupted_backfill_resumes_where_it_stopped()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE tc_resume (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
            INSERT INTO tc_resume SELECT g, g FROM generate_series(1, 3000) g;
            """);
        var engine = Engines.For(_db);
        var migration = await ChangeTypeAsync(engine, "public", "tc_resume", "n", "bigint");
        var partial = await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 300, MaxBatches = 3 });
        Assert.Equal(MigrationPhase.Backfilling, partial.Phase);
        var pending = await _db.ScalarAsync<long>("SELECT count(*) FROM tc_resume WHERE zdt_n_new IS NULL");
        Assert.InRange(pending, 1, 2999);
        var resumed = await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 300 });
        Assert.Equal(MigrationPhase.Backfilled, resumed.Phase);
        Assert.True(resumed.RowsBackfilled <= 3000 + 300, $"rows backfilled over both runs: {resumed.RowsBackfilled}");
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        await engine.CompleteAsync(migration.Id);
        Assert.Equal("bigint", await _db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tc_resume'::regclass AND attname = 'n'"));
        Assert.Equal("0", await _db.ScalarAsync<string>("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'tc_resume'::regclass"));
        Assert.Equal(3000L * 3001 / 2, await _db.ScalarAsync<long>("SELECT sum(n)::bigint FROM tc_resume"));
    }

    [Fact]
    public async Task A_cascade_backfill_stopped_on_the_referencing_table_resumes_there_and_ends_as_a_plain_alter_of_both()
    {
        await CreateParentAndChildAsync("tc_resume2", rows: 1500);
        await CreateParentAndChildAsync("tc_resume2_twin", rows: 1500);
        await _db.ExecuteAsync("ALTER TABLE tc_resume2_twin.parent ALTER COLUMN id TYPE bigint; ALTER TABLE tc_resume2_twin.child ALTER COLUMN parent_id TYPE bigint");
        var engine = Engines.For(_db);
        var migration = await ChangeTypeAsync(engine, "tc_resume2", "parent", "id", "bigint", cascade: true);
        var childOid = await _db.ScalarAsync<long>("SELECT 'tc_resume2.child'::regclass::oid::bigint");

        // One batch at a time, as a process killed between batches leaves it, until the walk is on the second table.
        string? checkpoint = null;
        for (var runs = 0; runs < 40; runs++)
        {
            await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100, MaxBatches = 1 });
            checkpoint = await _db.ScalarAsync<string?>($"SELECT backfill_checkpoint::text FROM zdt.migration WHERE id = {migration.Id}");
            if (checkpoint is not null && checkpoint.Contains($"\"table\": {childOid}", StringComparison.Ordinal))
            {
                break;
            }
        }

        Assert.Contains($"\"table\": {childOid}", checkpoint ?? "", StringComparison.Ordinal);
        Assert.Equal(MigrationPhase.Backfilling, (await engine.GetMigrationsAsync(new MigrationQuery { Id = migration.Id })).Single().Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM tc_resume2.parent WHERE zdt_id_new IS NULL"));
        Assert.InRange(await _db.ScalarAsync<long>("SELECT count(*) FROM tc_resume2.child WHERE zdt_parent_id_new IS NULL"), 1, 499);
        var parity = await engine.TestColumnParityAsync(migration.Id);
        Assert.False(parity.InParity);
        Assert.Contains("\"tc_resume2\".\"child\"", string.Join(" ", parity.SampleKeys), StringComparison.Ordinal);

        var resumed = await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100 });
        Assert.Equal(MigrationPhase.Backfilled, resumed.Phase);
        Assert.True(resumed.RowsBackfilled <= 1500 + 500 + 200, $"rows backfilled over all runs: {resumed.RowsBackfilled}");
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
        Assert.Equal(await PgDumpShape.OfAsync(_db, "tc_resume2_twin", "parent"), await PgDumpShape.OfAsync(_db, "tc_resume2", "parent"));
        Assert.Equal(await PgDumpShape.OfAsync(_db, "tc_resume2_twin", "child"), await PgDumpShape.OfAsync(_db, "tc_resume2", "child"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM tc_resume2.child c LEFT JOIN tc_resume2.parent p ON p.id = c.parent_id WHERE p.id IS NULL"));
    }

    [Fact]
    public async Task A_cascade_refuses_a_multi_column_foreign_key_naming_it()
    {
        await _db.ExecuteAsync("""
            CREATE SCHEMA tc_multi;
            CREATE TABLE tc_multi.parent (id integer, code text, PRIMARY KEY (id), UNIQUE (id, code));
            CREATE TABLE tc_multi.child (id serial PRIMARY KEY, pid integer, pcode text, FOREIGN KEY (pid, pcode) REFERENCES tc_multi.parent (id, code));
            """);
        var refused = await Assert.ThrowsAsync<ZdtException>(() => ChangeTypeAsync(Engines.For(_db), "tc_multi", "parent", "id", "bigint", cascade: true));
        Assert.Equal("ColumnCannotBeCopied", refused.ErrorId);
        Assert.Contains("child_pid_pcode_fkey", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_attribute WHERE attrelid IN ('tc_multi.parent'::regclass, 'tc_multi.child'::regclass) AND attname LIKE 'zdt%'"));
    }

    [Theory]
    [InlineData("ALWAYS", "START WITH 10 INCREMENT BY 2")]
    [InlineData("BY DEFAULT", "START WITH 1000 INCREMENT BY -3 MAXVALUE 1000 CACHE 5")]
    public async Task An_identity_key_ends_as_a_plain_alter_keeps_its_sequence_and_value_and_keeps_giving_keys(string generated, string options)
    {
        var schema = "tc_ident_" + (generated == "ALWAYS" ? "always" : "default");
        await _db.ExecuteAsync("DO $$ BEGIN CREATE ROLE zdt_tc_ident_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
        foreach (var s in new[] { schema, schema + "_twin" })
        {
            await _db.ExecuteAsync($"""
                CREATE SCHEMA {s};
                CREATE TABLE {s}.t (id integer GENERATED {generated} AS IDENTITY ({options}) PRIMARY KEY, v text);
                CREATE TABLE {s}.r (id serial PRIMARY KEY, t_id integer REFERENCES {s}.t (id));
                INSERT INTO {s}.t (v) SELECT 'v' || g FROM generate_series(1, 500) g;
                INSERT INTO {s}.r (t_id) SELECT id FROM {s}.t WHERE id % 5 = 0;
                COMMENT ON SEQUENCE {s}.t_id_seq IS 'keys of t';
                GRANT USAGE ON SEQUENCE {s}.t_id_seq TO PUBLIC;
                GRANT SELECT, UPDATE ON SEQUENCE {s}.t_id_seq TO zdt_tc_ident_app WITH GRANT OPTION;
                """);
        }

        var engine = Engines.For(_db);
        var migration = await ChangeTypeAsync(engine, schema, "t", "id", "bigint", cascade: true);
        // The application keeps inserting through the old column, which keeps its identity until the swap.
        await _db.ExecuteAsync($"INSERT INTO {schema}.t (v) VALUES ('during1'), ('during2'); INSERT INTO {schema}_twin.t (v) VALUES ('during1'), ('during2')");
        await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100 });
        await _db.ExecuteAsync($"INSERT INTO {schema}.t (v) VALUES ('during3'); INSERT INTO {schema}_twin.t (v) VALUES ('during3')");
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
        await _db.ExecuteAsync($"ALTER TABLE {schema}_twin.t ALTER COLUMN id TYPE bigint; ALTER TABLE {schema}_twin.r ALTER COLUMN t_id TYPE bigint");
        await _db.ExecuteAsync($"INSERT INTO {schema}.t (v) VALUES ('after'); INSERT INTO {schema}_twin.t (v) VALUES ('after')");

        Assert.Equal(await PgDumpShape.OfAsync(_db, schema + "_twin", "t"), await PgDumpShape.OfAsync(_db, schema, "t"));
        Assert.Equal(await PgDumpShape.OfAsync(_db, schema + "_twin", "r"), await PgDumpShape.OfAsync(_db, schema, "r"));
        const string sequenceState = "SELECT format('%s %s %s %s %s %s %s', format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqcache, q.last_value, q.is_called) FROM pg_sequence s, {0} q WHERE s.seqrelid = '{0}'::regclass";
        Assert.Equal(
            await _db.ScalarAsync<string>(string.Format(System.Globalization.CultureInfo.InvariantCulture, sequenceState, schema + "_twin.t_id_seq")),
            await _db.ScalarAsync<string>(string.Format(System.Globalization.CultureInfo.InvariantCulture, sequenceState, schema + ".t_id_seq")));
        Assert.Equal($"{schema}.t_id_seq", await _db.ScalarAsync<string>($"SELECT pg_get_serial_sequence('{schema}.t', 'id')"));
        const string sequenceGrantsAndComment = "SELECT format('%s | %s', (SELECT string_agg(format('%s %s %s', grantee, privilege_type, is_grantable), ', ' ORDER BY grantee, privilege_type) FROM aclexplode(c.relacl)), obj_description(c.oid, 'pg_class')) FROM pg_class c WHERE c.oid = '{0}'::regclass";
        var twinSequence = await _db.ScalarAsync<string>(string.Format(System.Globalization.CultureInfo.InvariantCulture, sequenceGrantsAndComment, schema + "_twin.t_id_seq"));
        Assert.Contains("keys of t", twinSequence, StringComparison.Ordinal);
        Assert.Equal(twinSequence, await _db.ScalarAsync<string>(string.Format(System.Globalization.CultureInfo.InvariantCulture, sequenceGrantsAndComment, schema + ".t_id_seq")));
        Assert.Equal(
            await _db.ScalarAsync<string>($"SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM {schema}_twin.t"),
            await _db.ScalarAsync<string>($"SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM {schema}.t"));
    }

    [Fact]
    public async Task A_serial_keys_sequence_is_widened_with_it()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE tc_serial (id serial PRIMARY KEY, v text);
            INSERT INTO tc_serial (v) SELECT 'v' || g FROM generate_series(1, 200) g;
            """);
        var engine = Engines.For(_db);
        var migration = await ChangeTypeAsync(engine, "public", "tc_serial", "id", "bigint");
        await _db.ExecuteAsync("INSERT INTO tc_serial (v) VALUES ('during')");
        await engine.BackfillAsync(migration.Id);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        await engine.CompleteAsync(migration.Id);
        await _db.ExecuteAsync("INSERT INTO tc_serial (v) VALUES ('after')");
        Assert.Equal(202L, await _db.ScalarAsync<long>("SELECT max(id) FROM tc_serial"));
        Assert.Equal("bigint", await _db.ScalarAsync<string>("SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = 'tc_serial_id_seq'::regclass"));
        Assert.Equal("tc_serial_id_seq", await _db.ScalarAsync<string>("SELECT pg_get_serial_sequence('tc_serial', 'id')::regclass::text"));
    }

    /// <summary>One application version: inserts, updates, upserts and deletes of its own parents and children, with a model of what must be there.</summary>
    private sealed class KeyWriter : BackgroundSessions
    {
        private readonly Dictionary<int, string> _parents = new();
        private readonly Dictionary<int, int> _children = new();
        private string _schema = "";

        public static async Task<KeyWriter> StartAsync(TestDatabase db, string schema, int firstId, int seed)
        {
            var writer = new KeyWriter { _schema = schema };
            var connection = await db.OpenAsync();
            writer.Run(() => writer.RunAsync(connection, firstId, seed));
            return writer;
        }

        /// <summary>Every parent and child this writer left is there with its last value, and none it deleted is.</summary>
        public async Task AssertNothingLostAsync(TestDatabase db)
        {
            await using var connection = await db.OpenAsync();
            var ids = _parents.Keys.ToArray();
            var low = ids.Min();
            var high = ids.Max();
            var actual = new Dictionary<int, string>();
            await using (var cmd = new NpgsqlCommand($"SELECT id, payload FROM {_schema}.parent WHERE id BETWEEN $1 AND $2", connection))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = (long)low });
                cmd.Parameters.Add(new NpgsqlParameter { Value = (long)high });
                await using var reader = await cmd.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    actual[(int)reader.GetInt64(0)] = reader.GetString(1);
                }
            }

            var expected = _parents.Where(p => p.Value != "").ToDictionary(p => p.Key, p => p.Value);
            Assert.Equal(expected.OrderBy(p => p.Key), actual.OrderBy(p => p.Key));
            var children = await db.ScalarAsync<long>($"SELECT count(*) FROM {_schema}.child WHERE parent_id BETWEEN {low} AND {high}");
            Assert.Equal(_children.Count(c => expected.ContainsKey(c.Value)), children);
        }

        private async Task RunAsync(NpgsqlConnection connection, int firstId, int seed)
        {
            await using var _ = connection;
            var random = new Random(seed);
            var nextId = firstId;
            var step = 0;
            while (!Stopping.IsCancellationRequested)
            {
                step++;
                var live = _parents.Where(p => p.Value != "").Select(p => p.Key).ToList();
                var kind = live.Count < 5 ? 0 : random.Next(5);
                var existing = live.Count == 0 ? 0 : live[random.Next(live.Count)];
                var payload = $"w{seed}-{step}";
                try
                {
                    switch (kind)
                    {
                        case 0:
                            await ExecAsync(connection, $"INSERT INTO {_schema}.parent (id, code, payload) VALUES ($1, $2, $3)", nextId, "k" + nextId, payload);
                            _parents[nextId++] = payload;
                            break;
                        case 1:
                            await ExecAsync(connection, $"UPDATE {_schema}.parent SET payload = $2 WHERE id = $1", existing, payload);
                            _parents[existing] = payload;
                            break;
                        case 2:
                            await ExecAsync(connection, $"INSERT INTO {_schema}.parent (id, code, payload) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload", existing, "k" + existing, payload);
                            _parents[existing] = payload;
                            break;
                        case 3:
                            var child = await ScalarAsync(connection, $"INSERT INTO {_schema}.child (parent_id, note) VALUES ($1, $2) RETURNING id", existing, payload);
                            _children[child] = existing;
                            break;
                        default:
                            await ExecAsync(connection, $"DELETE FROM {_schema}.parent WHERE id = $1", existing);
                            _parents[existing] = "";
                            break;
                    }

                    Succeeded();
                }
                catch (PostgresException e)
                {
                    Failed($"{kind}: {e.SqlState}: {e.MessageText}");
                }
            }
        }

        private static async Task ExecAsync(NpgsqlConnection connection, string sql, params object[] values)
        {
            await using var cmd = new NpgsqlCommand(sql, connection);
            foreach (var value in values)
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = value });
            }

            await cmd.ExecuteNonQueryAsync();
        }

        private static async Task<int> ScalarAsync(NpgsqlConnection connection, string sql, params object[] values)
        {
            await using var cmd = new NpgsqlCommand(sql, connection);
            foreach (var value in values)
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = value });
            }

            return (int)(await cmd.ExecuteScalarAsync())!;
        }
    }
}
