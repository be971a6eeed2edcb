using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>The table-rename lifecycle (expand behind a view, contract, undo) against a real PostgreSQL.</summary>
public class TableRenameTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public TableRenameTests(TestDatabase db)
    {
        _db = db;
    }

    private async Task CreateOrdersAsync(string name)
    {
        await _db.ExecuteAsync($"""
            CREATE TABLE "{name}" (
                id bigserial PRIMARY KEY,
                sku text NOT NULL UNIQUE,
                qty int NOT NULL DEFAULT 1 CHECK (qty > 0),
                created_at timestamptz NOT NULL DEFAULT now(),
                audit_count int NOT NULL DEFAULT 0);
            CREATE TABLE "{name}_log" (id bigserial PRIMARY KEY, order_id bigint, action text);
            CREATE FUNCTION "{name}_log_fn"() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN INSERT INTO "{name}_log"(order_id, action) VALUES (NEW.id, TG_OP); RETURN NEW; END $f$;
            CREATE TRIGGER log_insert AFTER INSERT OR UPDATE ON "{name}" FOR EACH ROW EXECUTE FUNCTION "{name}_log_fn"();
            INSERT INTO "{name}" (sku, qty) SELECT 'sku-' || g, g FROM generate_series(1, 100) g;
            """);
    }

    [Fact]
    public async Task Expand_keeps_the_old_name_fully_working_while_the_new_name_is_used()
    {
        await CreateOrdersAsync("orders_a");
        var engine = Engines.For(_db);

        var migration = await engine.RenameTableAsync("orders_a", "orders_a2");

        Assert.Equal(MigrationPhase.Expanded, migration.Phase);
        Assert.Equal("RenameTable", migration.Operation);
        Assert.Equal("orders_a", migration.Table);
        Assert.Equal("orders_a2", migration.NewName);
        Assert.Equal("v", await _db.ScalarAsync<string>("SELECT relkind::text FROM pg_class WHERE relname = 'orders_a'"));
        Assert.Equal("r", await _db.ScalarAsync<string>("SELECT relkind::text FROM pg_class WHERE relname = 'orders_a2'"));

        // Old name: defaults and the sequence apply, RETURNING works.
        var id = await _db.ScalarAsync<long>("INSERT INTO orders_a (sku) VALUES ('via-view') RETURNING id");
        Assert.Equal(101, id);
        Assert.Equal(1, await _db.ScalarAsync<int>("SELECT qty FROM orders_a2 WHERE sku = 'via-view'"));

        // New name, concurrently used by "another application version": the same sequence.
        var id2 = await _db.ScalarAsync<long>("INSERT INTO orders_a2 (sku, qty) VALUES ('via-table', 5) RETURNING id");
        Assert.Equal(102, id2);

        // UPDATE / DELETE / ON CONFLICT through the view act on the table.
        Assert.Equal(7, await _db.ScalarAsync<int>("UPDATE orders_a SET qty = 7 WHERE sku = 'via-table' RETURNING qty"));
        Assert.Equal(7, await _db.ScalarAsync<int>("SELECT qty FROM orders_a2 WHERE sku = 'via-table'"));
        await _db.ExecuteAsync("INSERT INTO orders_a (sku, qty) VALUES ('sku-1', 3) ON CONFLICT (sku) DO UPDATE SET qty = orders_a.qty + EXCLUDED.qty");
        Assert.Equal(4, await _db.ScalarAsync<int>("SELECT qty FROM orders_a2 WHERE sku = 'sku-1'"));
        await _db.ExecuteAsync("DELETE FROM orders_a WHERE sku = 'sku-2'");
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a2 WHERE sku = 'sku-2'"));

        // Constraints and triggers of the table fire for writes through the view.
        var check = await Assert.ThrowsAsync<PostgresException>(() => _db.ExecuteAsync("INSERT INTO orders_a (sku, qty) VALUES ('bad', -1)"));
        Assert.Equal(PostgresErrorCodes.CheckViolation, check.SqlState);
        var unique = await Assert.ThrowsAsync<PostgresException>(() => _db.ExecuteAsync("INSERT INTO orders_a (sku) VALUES ('sku-3')"));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, unique.SqlState);
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a_log WHERE order_id = 101 AND action = 'INSERT'"));
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a_log WHERE order_id = 102 AND action = 'UPDATE'"));

        // Both names show the same rows.
        Assert.Equal(
            await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a2"),
            await _db.ScalarAsync<long>("SELECT count(*) FROM orders_a"));
    }

    [Fact]
    public async Task Concurrent_writers_through_both_names_see_no_errors_across_expand_and_contract()
    {
        await CreateOrdersAsync("orders_b");
        var engine = Engines.For(_db);
        using var stop = new CancellationTokenSource();
        var errors = new List<string>();
        var oldNameWrites = 0;

        // v1 of the application only knows the old name; it keeps writing through expand and the
        // time the view serves it. It stops before contract, as a real rollout would.
        var v1 = Task.Run(async () =>
        {
            await using var conn = await _db.OpenAsync();
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await using var cmd = new NpgsqlCommand("INSERT INTO orders_b (sku) VALUES ($1) RETURNING id", conn);
                    cmd.Parameters.AddWithValue($"v1-{n++}");
                    await cmd.ExecuteScalarAsync();
                    Interlocked.Increment(ref oldNameWrites);
                }
                catch (PostgresException e)
                {
                    lock (errors)
                    {
                        errors.Add(e.MessageText);
                    }
                }
            }
        });

        await Task.Delay(200);
        var migration = await engine.RenameTableAsync("orders_b", "orders_b2");
        await Task.Delay(300);

        // v2 uses the new name while v1 still runs.
        for (var i = 0; i < 50; i++)
        {
            await _db.ExecuteAsync($"INSERT INTO orders_b2 (sku) VALUES ('v2-{i}')");
        }

        await stop.CancelAsync();
        await v1;
        var completed = await engine.CompleteAsync(migration.Id);

        Assert.Empty(errors);
        Assert.True(oldNameWrites > 0);
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Null(await _db.ScalarAsync<string>("SELECT relkind::text FROM pg_class WHERE relname = 'orders_b'"));
        Assert.Equal(100L + oldNameWrites + 50, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_b2"));
    }

    [Fact]
    public async Task Contract_drops_the_view_and_the_ledger_has_every_phase_with_its_sql()
    {
        await CreateOrdersAsync("orders_c");
        var engine = Engines.For(_db);
        var expanded = await engine.RenameTableAsync("orders_c", "orders_c2");

        var completed = await engine.CompleteAsync(expanded.Id);

        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.False(completed.IsActive);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'orders_c'"));
        Assert.Equal(100L, await _db.ScalarAsync<long>("SELECT count(*) FROM orders_c2"));

        var withEvents = await engine.GetMigrationAsync(expanded.Id);
        Assert.Contains(withEvents.Events, e => e.ToPhase == "expanded" && e.Sql!.Contains("ALTER TABLE \"public\".\"orders_c\" RENAME TO \"orders_c2\"", StringComparison.Ordinal));
        Assert.Contains(withEvents.Events, e => e.ToPhase == "completed" && e.Sql == "DROP VIEW \"public\".\"orders_c\";");
        Assert.All(withEvents.Events, e => Assert.False(string.IsNullOrEmpty(e.By)));

        // A contract run again is a no-op (a retried pipeline stage); an undo after it is out of order.
        Assert.True((await engine.PlanContractAsync(expanded.Id)).AlreadyDone);
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanUndoAsync(expanded.Id));
        Assert.Equal("PhaseOutOfOrder", error.ErrorId);
    }

    [Fact]
    public async Task Undo_restores_the_table_exactly()
    {
        await CreateOrdersAsync("orders_d");
        var reader = "zdt_reader_" + _db.DatabaseName;
        await _db.ExecuteAsync($"CREATE ROLE {reader}; GRANT SELECT ON orders_d TO {reader};");
        var before = await SchemaSnapshotAsync("orders_d");
        var engine = Engines.For(_db);
        var expanded = await engine.RenameTableAsync("orders_d", "orders_d2");

        var undone = await engine.UndoAsync(expanded.Id);

        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        Assert.Equal(before, await SchemaSnapshotAsync("orders_d"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'orders_d2'"));
        Assert.Empty(await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_d", ActiveOnly = true }));

        // The table is free again: a new migration may start.
        var again = await engine.RenameTableAsync("orders_d", "orders_d3");
        Assert.Equal(MigrationPhase.Expanded, again.Phase);
        await engine.UndoAsync(again.Id);
    }

    [Fact]
    public async Task The_view_carries_grants_and_row_level_security_still_applies()
    {
        // Roles are cluster-wide: name them after this test database so reruns on a shared server don't collide.
        var alice = "zdt_alice_" + _db.DatabaseName;
        var nobody = "zdt_nobody_" + _db.DatabaseName;
        await _db.ExecuteAsync($"""
            CREATE TABLE docs (id int PRIMARY KEY, owner_name text NOT NULL, body text);
            INSERT INTO docs VALUES (1, '{alice}', 'a'), (2, 'someone else', 'b');
            ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
            CREATE POLICY own_rows ON docs USING (owner_name = current_user);
            CREATE ROLE {alice}; CREATE ROLE {nobody};
            GRANT SELECT, INSERT ON docs TO {alice};
            GRANT UPDATE (body) ON docs TO {alice};
            """);
        var engine = Engines.For(_db);
        await engine.RenameTableAsync("docs", "documents");

        Assert.Equal(1L, await _db.ScalarAsync<long>($"SELECT count(*) FROM information_schema.role_table_grants WHERE table_name = 'docs' AND grantee = '{alice}' AND privilege_type = 'SELECT'"));
        Assert.Equal(1L, await _db.ScalarAsync<long>($"SELECT count(*) FROM information_schema.column_privileges WHERE table_name = 'docs' AND grantee = '{alice}' AND column_name = 'body' AND privilege_type = 'UPDATE'"));

        // PostgreSQL 15+: a security_invoker view, so alice's policy applies (her row only).
        // Before 15 (documented): the view checks permissions as its owner, who is not subject
        // to the policy, so alice sees every row through the old name.
        var rowsAliceSees = _db.Server.MajorVersion >= 15 ? 1L : 2L;
        await using var conn = await _db.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"SET ROLE {alice}; SELECT count(*) FROM docs;", conn))
        {
            Assert.Equal(rowsAliceSees, (long)(await cmd.ExecuteScalarAsync())!);
        }

        await using (var cmd = new NpgsqlCommand($"RESET ROLE; SET ROLE {nobody}; SELECT count(*) FROM docs;", conn))
        {
            var denied = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteScalarAsync());
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, denied.SqlState);
        }
    }

    [Fact]
    public async Task WhatIf_planning_changes_nothing_and_shows_the_sql_that_then_runs()
    {
        await CreateOrdersAsync("orders_e");
        var engine = Engines.For(_db);

        var plan = await engine.PlanTableRenameAsync(new TableRenameRequest("public", "orders_e", "orders_e2"));
        var script = plan.ToScript(engine.Options.LockTimeout);

        Assert.Equal("r", await _db.ScalarAsync<string>("SELECT relkind::text FROM pg_class WHERE relname = 'orders_e'"));
        Assert.Contains("ALTER TABLE \"public\".\"orders_e\" RENAME TO \"orders_e2\";", script, StringComparison.Ordinal);
        // security_invoker exists from PostgreSQL 15; before, the view is planned without it.
        var viewOptions = _db.Server.MajorVersion >= 15 ? " WITH (security_invoker = true)" : "";
        if (_db.Server.MajorVersion < 15)
        {
            // The plan says so, where the user reads it before anything runs.
            Assert.Contains("before PostgreSQL 15 the view checks permissions as its owner", script, StringComparison.Ordinal);
        }

        Assert.Contains($"CREATE VIEW \"public\".\"orders_e\"{viewOptions} AS SELECT \"id\", \"sku\", \"qty\", \"created_at\", \"audit_count\" FROM \"public\".\"orders_e2\";", script, StringComparison.Ordinal);
        Assert.Contains("SET LOCAL lock_timeout = '100ms';", script, StringComparison.Ordinal);
        Assert.Contains("ACCESS EXCLUSIVE", script, StringComparison.Ordinal);
        Assert.Single(plan.Steps);

        var migration = await engine.RunAsync(plan);
        var events = (await engine.GetMigrationAsync(migration.Id)).Events;
        var ran = events.Single(e => e.ToPhase == "expanded").Sql!;
        foreach (var statement in plan.Steps[0].Statements)
        {
            Assert.Contains(statement + ";", ran, StringComparison.Ordinal);
        }

        await engine.UndoAsync(migration.Id);
    }

    [Fact]
    public async Task A_plan_made_before_the_schema_changed_is_refused()
    {
        await CreateOrdersAsync("orders_f");
        var engine = Engines.For(_db);
        var plan = await engine.PlanTableRenameAsync(new TableRenameRequest("public", "orders_f", "orders_f2"));
        await _db.ExecuteAsync("ALTER TABLE orders_f ADD COLUMN note text");

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RunAsync(plan));

        Assert.Equal("PlanChanged", error.ErrorId);
        Assert.Equal("r", await _db.ScalarAsync<string>("SELECT relkind::text FROM pg_class WHERE relname = 'orders_f'"));
    }

    [Theory]
    [InlineData("Mixed Case", "New \"Name\"")]
    [InlineData("select", "from")]
    [InlineData("weird\"quote", "tab le")]
    public async Task Names_that_need_quoting_work_through_the_whole_lifecycle(string table, string newName)
    {
        var q = "\"" + table.Replace("\"", "\"\"") + "\"";
        var qNew = "\"" + newName.Replace("\"", "\"\"") + "\"";
        await _db.ExecuteAsync($"CREATE TABLE {q} (\"Id\" serial PRIMARY KEY, \"user\" text DEFAULT 'x')");
        var engine = Engines.For(_db);

        var migration = await engine.RenameTableAsync(table, newName);
        await _db.ExecuteAsync($"INSERT INTO {q} DEFAULT VALUES");
        Assert.Equal(1L, await _db.ScalarAsync<long>($"SELECT count(*) FROM {qNew}"));
        await engine.UndoAsync(migration.Id);
        Assert.Equal(1L, await _db.ScalarAsync<long>($"SELECT count(*) FROM {q}"));

        migration = await engine.RenameTableAsync(table, newName);
        await engine.CompleteAsync(migration.Id);
        Assert.Equal(1L, await _db.ScalarAsync<long>($"SELECT count(*) FROM {qNew}"));
    }

    [Fact]
    public async Task Bad_input_gives_specific_errors_and_changes_nothing()
    {
        await CreateOrdersAsync("orders_g");
        await _db.ExecuteAsync("""
            CREATE TABLE taken_g (id int);
            CREATE VIEW view_g AS SELECT 1 AS x;
            CREATE TABLE parted_g (id int, at date) PARTITION BY RANGE (at);
            CREATE TABLE parted_g_2024 PARTITION OF parted_g FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            CREATE INDEX orders_g_idx ON orders_g (qty);
            CREATE FOREIGN DATA WRAPPER zdt_dummy_fdw_g;
            CREATE SERVER zdt_dummy_server_g FOREIGN DATA WRAPPER zdt_dummy_fdw_g;
            CREATE FOREIGN TABLE foreign_g (id int) SERVER zdt_dummy_server_g;
            """);
        var engine = Engines.For(_db);
        var before = await SchemaSnapshotAsync("orders_g");

        async Task<ZdtException> Fails(string table, string newName)
            => await Assert.ThrowsAsync<ZdtException>(() => engine.PlanTableRenameAsync(new TableRenameRequest("public", table, newName)));

        var missing = await Fails("no_such_table", "x");
        Assert.Equal("TableNotFound", missing.ErrorId);
        Assert.Equal(ErrorKind.ObjectNotFound, missing.Kind);
        Assert.Contains("\"public\".\"no_such_table\"", missing.Message, StringComparison.Ordinal);

        var cased = await Fails("Orders_G", "x");
        Assert.Contains("did you mean \"orders_g\"", cased.Message, StringComparison.Ordinal);

        Assert.Equal("NameTaken", (await Fails("orders_g", "taken_g")).ErrorId);
        Assert.Equal("NameTaken", (await Fails("orders_g", "orders_g_idx")).ErrorId);
        Assert.Equal("NameTaken", (await Fails("orders_g", "orders_g_pkey")).ErrorId);
        Assert.Equal("NotATable", (await Fails("view_g", "view_g2")).ErrorId);
        Assert.Equal("NotATable", (await Fails("parted_g_2024", "p2")).ErrorId);
        Assert.Equal("NotATable", (await Fails("foreign_g", "f2")).ErrorId);
        Assert.Equal("SameName", (await Fails("orders_g", "orders_g")).ErrorId);
        Assert.Equal("IdentifierTooLong", (await Fails("orders_g", new string('n', 64))).ErrorId);
        Assert.Equal("TableNotFound", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanTableRenameAsync(new TableRenameRequest("no_schema", "orders_g", "x")))).ErrorId);

        Assert.Equal(before, await SchemaSnapshotAsync("orders_g"));
    }

    [Fact]
    public async Task A_partitioned_table_can_be_renamed_behind_a_view()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE events_p (id bigint GENERATED ALWAYS AS IDENTITY, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
            CREATE TABLE events_p_2024 PARTITION OF events_p FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            """);
        var engine = Engines.For(_db);
        var migration = await engine.RenameTableAsync("events_p", "events_p2");

        await _db.ExecuteAsync("INSERT INTO events_p (at) VALUES ('2024-06-01')");
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM events_p_2024"));
        await engine.CompleteAsync(migration.Id);
    }

    [Fact]
    public async Task A_second_migration_on_the_same_table_is_refused_before_anything_changes()
    {
        await CreateOrdersAsync("orders_h");
        var engine = Engines.For(_db);
        var first = await engine.RenameTableAsync("orders_h", "orders_h2");

        // By its new name: the ledger keys active migrations on the table's oid, which survives renames.
        var byNewName = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanTableRenameAsync(new TableRenameRequest("public", "orders_h2", "orders_h3")));
        Assert.Equal("MigrationAlreadyActive", byNewName.ErrorId);
        Assert.Contains($"migration {first.Id}", byNewName.Message, StringComparison.Ordinal);

        // By its old name, which is now our compatibility view.
        var byOldName = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanTableRenameAsync(new TableRenameRequest("public", "orders_h", "orders_h3")));
        Assert.Equal("NotATable", byOldName.ErrorId);
        Assert.Contains($"migration {first.Id}", byOldName.Message, StringComparison.Ordinal);

        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'orders_h3'"));
        await engine.UndoAsync(first.Id);
    }

    [Fact]
    public async Task Get_migration_filters_by_id_table_and_activity()
    {
        await CreateOrdersAsync("orders_i");
        var engine = Engines.For(_db);
        var m = await engine.RenameTableAsync("orders_i", "orders_i2");

        Assert.Single(await engine.GetMigrationsAsync(new MigrationQuery { Id = m.Id }));
        Assert.Contains(await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_i2", ActiveOnly = true }), x => x.Id == m.Id);
        var got = Assert.Single(await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_i", ActiveOnly = true }));
        Assert.Equal("\"public\".\"orders_i\"", got.Details["CompatibilityView"]);
        Assert.NotNull(got.Connection);
        Assert.False(string.IsNullOrEmpty(got.CreatedBy));

        await engine.UndoAsync(m.Id);
        Assert.Empty(await engine.GetMigrationsAsync(new MigrationQuery { Table = "orders_i", ActiveOnly = true }));
        Assert.Equal("MigrationNotFound", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanContractAsync(999_999))).ErrorId);
    }

    /// <summary>Columns, constraints, indexes, triggers, grants and kind of a relation, as text to compare.</summary>
    private async Task<string> SchemaSnapshotAsync(string table)
        => (await _db.ScalarAsync<string>($"""
            SELECT concat_ws(E'\n',
              (SELECT relkind::text || ' ' || COALESCE(relacl::text, '') FROM pg_class WHERE oid = '"{table}"'::regclass),
              (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull || ' ' || COALESCE(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY attnum)
                 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = '"{table}"'::regclass AND attnum > 0 AND NOT attisdropped),
              (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname) FROM pg_constraint WHERE conrelid = '"{table}"'::regclass),
              (SELECT string_agg(pg_get_indexdef(indexrelid), ', ' ORDER BY indexrelid) FROM pg_index WHERE indrelid = '"{table}"'::regclass),
              (SELECT string_agg(tgname, ', ' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = '"{table}"'::regclass AND NOT tgisinternal))
            """))!;
}
