using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>The copy strategy's whole lifecycle against a real PostgreSQL, under two application versions.</summary>
public class ColumnRenameTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public ColumnRenameTests(TestDatabase db)
    {
        _db = db;
    }

    /// <summary>An orders table whose address column has NOT NULL, a default, a check, indexes (plain, partial, expression, multi-column unique) and a foreign key.</summary>
    private async Task CreateOrdersAsync(string name, int rows = 2000)
    {
        await _db.ExecuteAsync($"""
            CREATE TABLE IF NOT EXISTS addresses_ref (address text PRIMARY KEY);
            INSERT INTO addresses_ref SELECT 'addr-' || g FROM generate_series(1, 100) g ON CONFLICT DO NOTHING;
            CREATE TABLE {name} (
                id bigserial PRIMARY KEY,
                code text NOT NULL UNIQUE,
                address text NOT NULL DEFAULT 'unknown' CHECK (address <> ''),
                qty int NOT NULL DEFAULT 1,
                note text);
            COMMENT ON COLUMN {name}.address IS 'where the order goes';
            ALTER TABLE {name} ALTER COLUMN address SET STATISTICS 500;
            CREATE INDEX {name}_address_idx ON {name} (address);
            CREATE INDEX {name}_big_lower ON {name} (lower(address)) WHERE qty > 10;
            CREATE UNIQUE INDEX {name}_code_address_key ON {name} (code, address);
            INSERT INTO {name} (code, address, qty) SELECT 'c' || g, 'addr-' || (g % 100 + 1), g % 20 + 1 FROM generate_series(1, {rows}) g;
            """);
    }

    [Fact]
    public async Task Two_application_versions_run_through_every_phase_without_errors_and_parity_holds()
    {
        await CreateOrdersAsync("orders_live");
        var engine = Engines.For(_db);
        await using var v1 = AppVersion.Start(_db, "orders_live", "address", "v1");
        await Task.Delay(300);

        var migration = await engine.RenameColumnAsync("orders_live", "address", "billing_address");
        await using var v2 = AppVersion.Start(_db, "orders_live", "billing_address", "v2");
        await Task.Delay(300);
        await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 200 });
        await Task.Delay(300);
        var parity = await engine.TestColumnParityAsync(migration.Id);
        await Task.Delay(300);

        // The old version is retired before contract, as in a real rollout; the new one keeps running.
        await v1.StopAsync();
        var completed = await engine.CompleteAsync(migration.Id);
        await Task.Delay(300);
        await v2.StopAsync();

        Assert.Empty(v1.Errors);
        Assert.Empty(v2.Errors);
        Assert.True(v1.Statements > 50 && v2.Statements > 50, $"v1 {v1.Statements}, v2 {v2.Statements} statements");
        Assert.True(parity.InParity, parity.ToString());
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders_live' AND column_name = 'address'"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_live WHERE billing_address IS NULL"));
    }

    [Fact]
    public async Task After_contract_the_table_is_what_a_plain_rename_would_have_produced()
    {
        await CreateOrdersAsync("orders_eq", rows: 500);
        await CreateOrdersAsync("orders_eq_plain", rows: 500);
        await _db.ExecuteAsync("""
            ALTER TABLE orders_eq ADD CONSTRAINT orders_eq_addr_fk FOREIGN KEY (address) REFERENCES addresses_ref (address) NOT VALID;
            ALTER TABLE orders_eq_plain ADD CONSTRAINT orders_eq_plain_addr_fk FOREIGN KEY (address) REFERENCES addresses_ref (address) NOT VALID;
            UPDATE orders_eq SET address = 'addr-1' WHERE address NOT IN (SELECT address FROM addresses_ref);
            UPDATE orders_eq_plain SET address = 'addr-1' WHERE address NOT IN (SELECT address FROM addresses_ref);
            ALTER TABLE orders_eq VALIDATE CONSTRAINT orders_eq_addr_fk;
            ALTER TABLE orders_eq_plain VALIDATE CONSTRAINT orders_eq_plain_addr_fk;
            ALTER TABLE orders_eq_plain RENAME COLUMN address TO billing_address;
            """);
        var engine = Engines.For(_db);

        var migration = await engine.RenameColumnUpToVerifiedAsync("orders_eq", "address", "billing_address");
        await engine.CompleteAsync(migration.Id);

        Assert.Equal(await SchemaSnapshot.ShapeAsync(_db, "orders_eq_plain"), await SchemaSnapshot.ShapeAsync(_db, "orders_eq"));
        Assert.Equal("where the order goes", await _db.ScalarAsync<string>("SELECT col_description('orders_eq'::regclass, attnum) FROM pg_attribute WHERE attrelid = 'orders_eq'::regclass AND attname = 'billing_address'"));
        Assert.Equal(500, await _db.ScalarAsync<int>("SELECT attstattarget::int FROM pg_attribute WHERE attrelid = 'orders_eq'::regclass AND attname = 'billing_address'"));

        // Names that carried the old column's name now carry the new one; the others are unchanged.
        var indexes = await _db.ScalarAsync<string>("SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'orders_eq'::regclass)");
        Assert.Equal("orders_eq_big_lower,orders_eq_billing_address_idx,orders_eq_code_billing_address_key,orders_eq_code_key,orders_eq_pkey", indexes);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders_eq'::regclass AND NOT tgisinternal"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_proc WHERE proname LIKE 'sync_%orders_eq%'"));
    }

    [Fact]
    public async Task The_trigger_keeps_both_names_equal_whichever_version_writes()
    {
        await CreateOrdersAsync("orders_sync", rows: 0);
        var engine = Engines.For(_db);
        await engine.RenameColumnAsync("orders_sync", "address", "billing_address");

        await _db.ExecuteAsync("INSERT INTO orders_sync (code, address) VALUES ('old-only', 'A')");
        await _db.ExecuteAsync("INSERT INTO orders_sync (code, billing_address) VALUES ('new-only', 'B')");
        await _db.ExecuteAsync("INSERT INTO orders_sync (code) VALUES ('neither')");
        Assert.Equal("A|A", await PairAsync("old-only"));
        Assert.Equal("B|B", await PairAsync("new-only"));
        Assert.Equal("unknown|unknown", await PairAsync("neither"));

        await _db.ExecuteAsync("UPDATE orders_sync SET address = 'A2' WHERE code = 'old-only'");
        await _db.ExecuteAsync("UPDATE orders_sync SET billing_address = 'B2' WHERE code = 'new-only'");
        await _db.ExecuteAsync("UPDATE orders_sync SET qty = 9 WHERE code = 'neither'");
        Assert.Equal("A2|A2", await PairAsync("old-only"));
        Assert.Equal("B2|B2", await PairAsync("new-only"));

        // The NOT NULL of the old column still holds for a version that writes NULL to the new one.
        var error = await Assert.ThrowsAsync<PostgresException>(() => _db.ExecuteAsync("UPDATE orders_sync SET billing_address = NULL WHERE code = 'new-only'"));
        Assert.Equal(PostgresErrorCodes.NotNullViolation, error.SqlState);

        // The check was copied NOT VALID, so it already guards new writes to the new column.
        error = await Assert.ThrowsAsync<PostgresException>(() => _db.ExecuteAsync("INSERT INTO orders_sync (code, billing_address) VALUES ('empty', '')"));
        Assert.Equal(PostgresErrorCodes.CheckViolation, error.SqlState);

        // The unique index on (code, billing_address) exists at once: ON CONFLICT on the new name works.
        await _db.ExecuteAsync("INSERT INTO orders_sync (code, billing_address) VALUES ('new-only', 'B2') ON CONFLICT (code, billing_address) DO UPDATE SET qty = 42");
        Assert.Equal(42, await _db.ScalarAsync<int>("SELECT qty FROM orders_sync WHERE code = 'new-only'"));
    }

    private async Task<string> PairAsync(string code)
        => (await _db.ScalarAsync<string>($"SELECT address || '|' || billing_address FROM orders_sync WHERE code = '{code}'"))!;

    [Fact]
    public async Task An_interrupted_backfill_resumes_where_it_stopped_and_completes_with_parity()
    {
        await CreateOrdersAsync("orders_resume", rows: 5000);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnAsync("orders_resume", "address", "billing_address");

        // Stopped after two batches (as if the operator pressed Ctrl+C between batches).
        var partial = await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 300, MaxBatches = 2 });
        Assert.Equal(MigrationPhase.Backfilling, partial.Phase);
        Assert.Equal(600, partial.RowsBackfilled);

        // Cancelled in the middle of a run.
        using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(150)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 50, Delay = TimeSpan.FromMilliseconds(20) }, cancel.Token));
        }

        // Its connections terminated by the server (what a killed process or a dropped connection
        // amounts to on the server side): keep killing our sessions until the run gives up.
        using var killing = new CancellationTokenSource();
        var killer = Task.Run(async () =>
        {
            await Task.Delay(300);
            while (!killing.IsCancellationRequested)
            {
                await _db.ExecuteAsync("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ZeroDowntime' AND datname = current_database() AND pid <> pg_backend_pid()");
                await Task.Delay(30);
            }
        });
        await Assert.ThrowsAnyAsync<Exception>(() => engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 50, Delay = TimeSpan.FromMilliseconds(50) }));
        await killing.CancelAsync();
        await killer;

        var afterCrash = (await engine.GetMigrationsAsync(new MigrationQuery { Id = migration.Id }))[0];
        Assert.Equal(MigrationPhase.Backfilling, afterCrash.Phase);
        Assert.True(afterCrash.RowsBackfilled >= 600);

        var done = await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 1000 });
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.Equal(5000, done.RowsBackfilled);
        var parity = await engine.TestColumnParityAsync(migration.Id);
        Assert.True(parity.InParity);
        Assert.Equal(5000, parity.RowsChecked);
        await engine.CompleteAsync(migration.Id);
    }

    [Fact]
    public async Task Rows_locked_by_the_application_are_skipped_then_filled_and_the_backfill_never_waits_on_them()
    {
        await CreateOrdersAsync("orders_locked", rows: 1000);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnAsync("orders_locked", "address", "billing_address");
        // await using: should an assertion fail while it holds the rows, its open transaction would
        // otherwise make every later CREATE INDEX CONCURRENTLY in this database wait for it.
        await using var locker = await _db.OpenAsync();
        await using (var cmd = new NpgsqlCommand("BEGIN; SELECT id FROM orders_locked WHERE id BETWEEN 100 AND 110 FOR UPDATE;", locker))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        var backfill = engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 100 });
        // Every row but the 11 locked ones gets filled while they stay locked. Polled rather than
        // read after a fixed second: on a loaded machine (a container, other suites beside it) the
        // 1,000 rows took longer than that (seen on the PostgreSQL 17 run of the matrix).
        var pending = -1L;
        for (var waited = 0; waited < 150 && pending != 11L; waited++)
        {
            await Task.Delay(100);
            pending = await _db.ScalarAsync<long>("SELECT count(*) FROM orders_locked WHERE billing_address IS NULL");
        }

        Assert.Equal(11L, pending);
        Assert.False(backfill.IsCompleted, "the locked rows must still be pending");

        await using (var cmd = new NpgsqlCommand("ROLLBACK", locker))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        await locker.DisposeAsync();
        var done = await backfill.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
    }

    [Theory]
    [InlineData("CREATE TABLE {0} (a int, b int, val text NOT NULL, PRIMARY KEY (a, b)); INSERT INTO {0} SELECT g / 10, g % 10, 'v' || g FROM generate_series(1, 3000) g", "val")]
    [InlineData("CREATE TABLE {0} (val text, other int); INSERT INTO {0} SELECT 'v' || g, g FROM generate_series(1, 3000) g; INSERT INTO {0} VALUES (NULL, 0)", "val")]
    [InlineData("CREATE TABLE {0} (k uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(), val text); INSERT INTO {0} (val) SELECT 'v' || g FROM generate_series(1, 3000) g", "val")]
    [InlineData("CREATE TABLE {0} (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, val numeric(12,2) DEFAULT 1.5); INSERT INTO {0} (val) SELECT g FROM generate_series(1, 3000) g", "val")]
    [InlineData("CREATE TABLE {0} (id int PRIMARY KEY, \"Weird \"\"Col\" text); INSERT INTO {0} SELECT g, 'v' || g FROM generate_series(1, 3000) g", "Weird \"Col")]
    public async Task Keys_of_every_shape_and_names_that_need_quoting_go_through_the_lifecycle(string create, string column)
    {
        var table = "shape_" + Math.Abs(create.GetHashCode(StringComparison.Ordinal) % 100000);
        await _db.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, create, table));
        var quoted = "\"" + column.Replace("\"", "\"\"") + "\"";
        var before = await _db.ScalarAsync<string>($"SELECT md5(string_agg({quoted}::text, ',' ORDER BY {quoted}::text)) FROM {table}");
        var engine = Engines.For(_db);

        if (_db.Server.MajorVersion < 14 && !create.Contains("KEY", StringComparison.Ordinal) && !create.Contains("UNIQUE", StringComparison.Ordinal))
        {
            // A table without a key is walked by ctid ranges, which need PostgreSQL 14 (documented):
            // before, the rename is refused at planning with the reason, before anything changes.
            var schemaBefore = await SchemaSnapshot.OfAsync(_db, table);
            var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.RenameColumnAsync(table, column, "renamed"));
            Assert.Equal("NoBatchKey", refused.ErrorId);
            Assert.Contains("PostgreSQL 14", refused.Message, StringComparison.Ordinal);
            Assert.Equal(schemaBefore, await SchemaSnapshot.OfAsync(_db, table));
            Assert.Empty(await engine.GetMigrationsAsync(new MigrationQuery { Table = table }));
            return;
        }

        var migration = await engine.RenameColumnUpToVerifiedAsync(table, column, "renamed");
        var completed = await engine.CompleteAsync(migration.Id);

        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(before, await _db.ScalarAsync<string>($"SELECT md5(string_agg(renamed::text, ',' ORDER BY renamed::text)) FROM {table}"));
    }

    [Fact]
    public async Task Undo_from_any_phase_before_contract_restores_the_table_exactly()
    {
        await CreateOrdersAsync("orders_undo", rows: 300);
        var before = await SchemaSnapshot.OfAsync(_db, "orders_undo");
        var engine = Engines.For(_db);

        var expanded = await engine.RenameColumnAsync("orders_undo", "address", "billing_address");
        Assert.Equal(MigrationPhase.Undone, (await engine.UndoAsync(expanded.Id)).Phase);
        Assert.Equal(before, await SchemaSnapshot.OfAsync(_db, "orders_undo"));

        var verified = await engine.RenameColumnUpToVerifiedAsync("orders_undo", "address", "billing_address");
        Assert.Equal(MigrationPhase.Undone, (await engine.UndoAsync(verified.Id)).Phase);
        Assert.Equal(before, await SchemaSnapshot.OfAsync(_db, "orders_undo"));
        Assert.Equal("unknown", await _db.ScalarAsync<string>("INSERT INTO orders_undo (code) VALUES ('after-undo') RETURNING address"));
    }

    [Fact]
    public async Task A_contract_stopped_before_its_last_step_can_be_resumed_or_undone_exactly()
    {
        await CreateOrdersAsync("orders_half", rows: 300);
        var before = await SchemaSnapshot.OfAsync(_db, "orders_half");
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnUpToVerifiedAsync("orders_half", "address", "billing_address");

        // A long reader that arrives once the old column's plain indexes are dropped (concurrently)
        // blocks the final ACCESS EXCLUSIVE step; with a short retry cap the contract stops there.
        await StopContractBeforeItsLastStepAsync(migration.Id);
        var stopped = (await engine.GetMigrationsAsync(new MigrationQuery { Id = migration.Id }))[0];
        Assert.Equal(MigrationPhase.Contracting, stopped.Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'orders_half_address_idx'"));

        // Undo puts everything back, the dropped index included.
        var undone = await engine.UndoAsync(migration.Id);
        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        Assert.Equal(before, await SchemaSnapshot.OfAsync(_db, "orders_half"));

        // The same situation resumed instead: running Complete-Contract again finishes it.
        migration = await engine.RenameColumnUpToVerifiedAsync("orders_half", "address", "billing_address");
        await StopContractBeforeItsLastStepAsync(migration.Id);
        var completed = await engine.CompleteAsync(migration.Id);
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'orders_half_billing_address_idx'"));
    }

    private async Task StopContractBeforeItsLastStepAsync(long migrationId)
    {
        NpgsqlConnection? reader = null;
        var observer = new RecordingObserver
        {
            OnVerbose = message =>
            {
                if (reader is null && message.Contains("Refresh the planner statistics", StringComparison.Ordinal))
                {
                    reader = _db.OpenAsync().GetAwaiter().GetResult();
                    using var cmd = new NpgsqlCommand("BEGIN; SELECT count(*) FROM orders_half;", reader);
                    cmd.ExecuteNonQuery();
                }
            },
        };
        var impatient = Engines.For(_db, observer, Engines.Fast with { LockRetryTimeout = TimeSpan.FromSeconds(1) });
        try
        {
            var error = await Assert.ThrowsAsync<ZdtException>(async () => await impatient.RunAsync(await impatient.PlanContractAsync(migrationId)));
            Assert.Equal("LockRetryTimeoutExceeded", error.ErrorId);
            Assert.Contains("Drop the sync trigger and the old column", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            if (reader is not null)
            {
                await reader.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Phases_out_of_order_and_bad_requests_fail_clearly_and_change_nothing()
    {
        await CreateOrdersAsync("orders_bad", rows: 100);
        await _db.ExecuteAsync("""
            CREATE VIEW orders_bad_view AS SELECT id, note FROM orders_bad;
            CREATE TABLE orders_bad_child (code text REFERENCES orders_bad (code));
            ALTER TABLE orders_bad ADD COLUMN qty_doubled int GENERATED ALWAYS AS (qty * 2) STORED;
            CREATE TABLE parted_bad (id int, at date, val text) PARTITION BY RANGE (at);
            """);
        var before = await SchemaSnapshot.OfAsync(_db, "orders_bad");
        var engine = Engines.For(_db);

        async Task<ZdtException> PlanFails(string column, string newName)
            => await Assert.ThrowsAsync<ZdtException>(() => engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "orders_bad", column, newName)));

        Assert.Equal("ColumnNotFound", (await PlanFails("adress", "x")).ErrorId);
        Assert.Equal("ColumnExists", (await PlanFails("address", "note")).ErrorId);
        Assert.Equal("SameName", (await PlanFails("address", "address")).ErrorId);
        var pk = await PlanFails("id", "order_id");
        Assert.Equal("ColumnCannotBeCopied", pk.ErrorId);
        Assert.Contains("primary key", pk.Message, StringComparison.Ordinal);
        var view = await PlanFails("note", "remark");
        Assert.Contains("orders_bad_view", view.Message, StringComparison.Ordinal);
        var fk = await PlanFails("code", "order_code");
        Assert.Contains("orders_bad_child", fk.Message, StringComparison.Ordinal);
        Assert.Equal("TableNotFound", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "nope", "a", "b")))).ErrorId);
        var generated = await PlanFails("qty", "quantity");
        Assert.Equal("ColumnCannotBeCopied", generated.ErrorId);
        Assert.Contains("generated column", generated.Message, StringComparison.Ordinal);
        // A partitioned table is copied (Partitions/PartitionedColumnRenameTests), but not a column of its partition key.
        var parted = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "parted_bad", "at", "day")));
        Assert.Equal("ColumnCannotBeCopied", parted.ErrorId);
        Assert.Contains("partition key of \"public\".\"parted_bad\"", parted.Message, StringComparison.Ordinal);

        var migration = await engine.RenameColumnAsync("orders_bad", "address", "billing_address");
        Assert.Equal("PhaseOutOfOrder", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanContractAsync(migration.Id))).ErrorId);
        Assert.Equal("MigrationAlreadyActive", (await PlanFails("note", "remark")).ErrorId);
        await engine.BackfillAsync(migration.Id);
        Assert.Equal("PhaseOutOfOrder", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanContractAsync(migration.Id))).ErrorId);

        await engine.UndoAsync(migration.Id);
        Assert.Equal("PhaseOutOfOrder", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanBackfillAsync(migration.Id))).ErrorId);
        Assert.Equal(before, await SchemaSnapshot.OfAsync(_db, "orders_bad"));
    }

    [Fact]
    public async Task Contract_refuses_when_parity_is_lost_and_changes_nothing()
    {
        await CreateOrdersAsync("orders_drift", rows: 200);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnUpToVerifiedAsync("orders_drift", "address", "billing_address");

        // A writer that bypasses triggers (e.g. a replication apply) makes the columns drift.
        await _db.ExecuteAsync("SET session_replication_role = replica; UPDATE orders_drift SET billing_address = 'drifted' WHERE id <= 3; RESET session_replication_role;");
        var plan = await engine.PlanContractAsync(migration.Id);
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RunAsync(plan));

        Assert.Equal("ParityFailed", error.ErrorId);
        Assert.Contains("3 row(s)", error.Message, StringComparison.Ordinal);
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders_drift' AND column_name = 'address'"));
        var parity = await engine.TestColumnParityAsync(migration.Id);
        Assert.Equal(3, parity.Mismatches);
        Assert.Equal(3, parity.SampleKeys.Count);
    }

    [Fact]
    public async Task WhatIf_plans_show_the_sql_of_every_phase_without_changing_anything()
    {
        await CreateOrdersAsync("orders_plan", rows: 10);
        var before = await SchemaSnapshot.OfAsync(_db, "orders_plan");
        var engine = Engines.For(_db);

        var expand = await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "orders_plan", "address", "billing_address"));
        var script = expand.ToScript(engine.Options.LockTimeout);

        Assert.Contains("ALTER TABLE \"public\".\"orders_plan\" ADD COLUMN \"billing_address\" text;", script, StringComparison.Ordinal);
        Assert.Contains("CREATE INDEX CONCURRENTLY \"orders_plan_billing_address_idx\" ON \"public\".\"orders_plan\" USING btree (\"billing_address\");", script, StringComparison.Ordinal);
        Assert.Contains("CHECK ((\"billing_address\" <> ''::text)) NOT VALID", script, StringComparison.Ordinal);
        Assert.Contains("BEFORE INSERT OR UPDATE", script, StringComparison.Ordinal);
        Assert.Equal(before, await SchemaSnapshot.OfAsync(_db, "orders_plan"));

        var migration = await engine.RunAsync(expand);
        var backfill = await engine.PlanBackfillAsync(migration.Id);
        Assert.Contains("FOR UPDATE OF t SKIP LOCKED", backfill.ToScript(engine.Options.LockTimeout), StringComparison.Ordinal);
        await engine.UndoAsync(migration.Id);
    }
}
