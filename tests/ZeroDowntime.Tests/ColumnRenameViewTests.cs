using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>Column renames by view in a version schema (expand, contract, undo, refusals) against a real PostgreSQL.</summary>
public class ColumnRenameViewTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public ColumnRenameViewTests(TestDatabase db)
    {
        _db = db;
    }

    private async Task CreateItemsAsync(string name)
    {
        await _db.ExecuteAsync($"""
            CREATE TABLE "{name}" (
                id bigserial PRIMARY KEY,
                sku text NOT NULL UNIQUE,
                qty int NOT NULL DEFAULT 1 CHECK (qty > 0),
                created_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO "{name}" (sku, qty) SELECT 'sku-' || g, g FROM generate_series(1, 100) g;
            """);
    }

    [Fact]
    public async Task Expand_creates_a_marked_version_schema_with_a_view_under_the_new_name_and_copies_nothing()
    {
        await CreateItemsAsync("items_a");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var migration = await engine.RenameColumnByViewAsync("items_a", "sku", "code", "rel_a");

        Assert.Equal(MigrationPhase.Expanded, migration.Phase);
        Assert.Equal("RenameColumnView", migration.Operation);
        Assert.Equal("View", migration.Strategy);
        Assert.Equal("sku", migration.Column);
        Assert.Equal("code", migration.NewName);
        Assert.Null(migration.RowsEstimated);

        // The table is untouched; the view shows the column under its new name, every other column as is.
        Assert.Equal("id, sku, qty, created_at", await ColumnsAsync("public", "items_a"));
        Assert.Equal("id, code, qty, created_at", await ColumnsAsync("rel_a", "items_a"));
        Assert.StartsWith("ZeroDowntime version schema", await _db.ScalarAsync<string>("SELECT obj_description('rel_a'::regnamespace, 'pg_namespace')"));
        // security_invoker exists from PostgreSQL 15; before, the view has no options (documented).
        var viewOptions = await _db.ScalarAsync<string>("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'rel_a.items_a'::regclass");
        if (_db.Server.MajorVersion >= 15)
        {
            Assert.Contains("security_invoker=true", viewOptions);
        }
        else
        {
            Assert.Null(viewOptions);
        }

        // What the new version needs to set, for the common clients.
        Assert.Equal("rel_a", migration.Details["VersionSchema"]);
        Assert.Equal("rel_a,public", migration.Details["SearchPath"]);
        Assert.Equal("options=-csearch_path=rel_a,public", migration.Details["Libpq"]);
        Assert.Equal("Search Path=rel_a,public", migration.Details["Npgsql"]);
        Assert.Equal("currentSchema=rel_a,public", migration.Details["Jdbc"]);
        Assert.Contains("options=-csearch_path=rel_a,public", observer.AllText, StringComparison.Ordinal);
        Assert.Contains("Search Path=rel_a,public", observer.AllText, StringComparison.Ordinal);
        Assert.Contains("currentSchema=rel_a,public", observer.AllText, StringComparison.Ordinal);

        // The new version, through the view: defaults, the sequence, RETURNING, UPDATE, DELETE, ON CONFLICT.
        await using var v2 = await _db.OpenWithSearchPathAsync(migration.Details["SearchPath"]);
        Assert.Equal(101L, await v2.ScalarAsync<long>("INSERT INTO items_a (code) VALUES ('new') RETURNING id"));
        Assert.Equal(1, await _db.ScalarAsync<int>("SELECT qty FROM items_a WHERE sku = 'new'"));
        Assert.Equal(9, await v2.ScalarAsync<int>("UPDATE items_a SET qty = 9 WHERE code = 'sku-1' RETURNING qty"));
        Assert.Equal(5, await v2.ScalarAsync<int>("INSERT INTO items_a (code, qty) VALUES ('sku-2', 3) ON CONFLICT (code) DO UPDATE SET qty = items_a.qty + EXCLUDED.qty RETURNING qty"));
        Assert.Equal(1, await v2.ExecuteAsync("DELETE FROM items_a WHERE code = 'sku-3'"));
        var check = await Assert.ThrowsAsync<PostgresException>(() => v2.ExecuteAsync("INSERT INTO items_a (code, qty) VALUES ('bad', -1)"));
        Assert.Equal(PostgresErrorCodes.CheckViolation, check.SqlState);

        // The old version keeps the old name on the table.
        Assert.Equal(100L, await _db.ScalarAsync<long>("SELECT count(*) FROM items_a WHERE sku IS NOT NULL"));
        await engine.UndoAsync(migration.Id);
    }

    [Fact]
    public async Task Contract_renames_the_column_drops_view_and_schema_in_one_transaction_and_the_new_version_falls_through()
    {
        await CreateItemsAsync("items_b");
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnByViewAsync("items_b", "sku", "code", "rel_b");
        await using var v2 = await _db.OpenWithSearchPathAsync("rel_b,public");
        Assert.Equal(100L, await v2.ScalarAsync<long>("SELECT count(code) FROM items_b"));

        // Held across the contract: a protocol-level prepared statement and an SQL PREPARE.
        await using var prepared = new NpgsqlCommand("SELECT code FROM items_b WHERE id = $1", v2);
        prepared.Parameters.Add(new NpgsqlParameter { Value = 1L });
        await prepared.PrepareAsync();
        Assert.Equal("sku-1", await prepared.ExecuteScalarAsync());
        await v2.ExecuteAsync("PREPARE get_b(bigint) AS SELECT code FROM items_b WHERE id = $1");
        Assert.Equal("sku-1", await v2.ScalarAsync<string>("EXECUTE get_b(1)"));

        var plan = await engine.PlanContractAsync(migration.Id);
        var completed = await engine.RunAsync(plan);

        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        var step = Assert.Single(plan.Steps);
        Assert.Equal(
            new[] { "DROP VIEW \"rel_b\".\"items_b\"", "ALTER TABLE \"public\".\"items_b\" RENAME COLUMN \"sku\" TO \"code\"", "DROP SCHEMA \"rel_b\"" },
            step.Statements);
        Assert.Equal("id, code, qty, created_at", await ColumnsAsync("public", "items_b"));
        Assert.False(await _db.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'rel_b')"));

        Assert.True(prepared.IsPrepared);
        Assert.Equal("sku-1", await prepared.ExecuteScalarAsync());
        Assert.Equal("sku-1", await v2.ScalarAsync<string>("EXECUTE get_b(1)"));
        Assert.Equal(101L, await v2.ScalarAsync<long>("INSERT INTO items_b (code) VALUES ('after') RETURNING id"));

        var events = (await engine.GetMigrationAsync(migration.Id)).Events;
        Assert.Contains(events, e => e.ToPhase == "completed" && e.Sql!.Contains("RENAME COLUMN \"sku\" TO \"code\"", StringComparison.Ordinal) && e.Sql.Contains("DROP SCHEMA", StringComparison.Ordinal));
        Assert.Equal("PhaseOutOfOrder", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanUndoAsync(migration.Id))).ErrorId);
    }

    [Fact]
    public async Task Undo_drops_the_view_and_the_empty_version_schema_and_leaves_the_table_exactly_as_it_was()
    {
        await CreateItemsAsync("items_c");
        var reader = "zdt_reader_c_" + _db.DatabaseName;
        await _db.ExecuteAsync($"CREATE ROLE {reader}; GRANT SELECT ON items_c TO {reader}; GRANT UPDATE (qty) ON items_c TO {reader};");
        var before = await SnapshotAsync("items_c");
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnByViewAsync("items_c", "sku", "code", null);

        // Without -VersionSchema the name is derived from the table, deterministically.
        Assert.Equal("zdt_v_public_items_c", migration.Details["VersionSchema"]);
        var undone = await engine.UndoAsync(migration.Id);

        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        Assert.Equal(before, await SnapshotAsync("items_c"));
        Assert.False(await _db.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'zdt_v_public_items_c')"));

        // The table is free again.
        var again = await engine.RenameColumnByViewAsync("items_c", "sku", "code", null);
        Assert.Equal(MigrationPhase.Expanded, again.Phase);
        await engine.UndoAsync(again.Id);
    }

    [Fact]
    public async Task Row_level_security_and_grants_apply_through_the_version_view()
    {
        var alice = "zdt_alice_v_" + _db.DatabaseName;
        var nobody = "zdt_nobody_v_" + _db.DatabaseName;
        await _db.ExecuteAsync($"""
            CREATE TABLE notes (id int PRIMARY KEY, owner_name text NOT NULL, body text);
            INSERT INTO notes VALUES (1, '{alice}', 'a'), (2, 'someone else', 'b');
            ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
            CREATE POLICY own_rows ON notes USING (owner_name = current_user);
            CREATE ROLE {alice}; CREATE ROLE {nobody};
            GRANT SELECT, INSERT ON notes TO {alice};
            GRANT UPDATE (body) ON notes TO {alice};
            """);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnByViewAsync("notes", "body", "content", "rel_rls");

        // Grants carried over, the column grant under the column's new name.
        Assert.Equal(1L, await _db.ScalarAsync<long>($"SELECT count(*) FROM information_schema.role_table_grants WHERE table_schema = 'rel_rls' AND table_name = 'notes' AND grantee = '{alice}' AND privilege_type = 'SELECT'"));
        Assert.Equal(1L, await _db.ScalarAsync<long>($"SELECT count(*) FROM information_schema.column_privileges WHERE table_schema = 'rel_rls' AND table_name = 'notes' AND grantee = '{alice}' AND column_name = 'content' AND privilege_type = 'UPDATE'"));

        await using var conn = await _db.OpenWithSearchPathAsync("rel_rls,public");
        await conn.ExecuteAsync($"SET ROLE {alice}");
        if (_db.Server.MajorVersion >= 15)
        {
            Assert.Equal(1L, await conn.ScalarAsync<long>("SELECT count(*) FROM notes"));
            Assert.Equal("a", await conn.ScalarAsync<string>("SELECT content FROM notes"));
            Assert.Equal(1, await conn.ExecuteAsync("UPDATE notes SET content = 'mine' WHERE id = 1"));
            Assert.Equal(0, await conn.ExecuteAsync("UPDATE notes SET content = 'theirs' WHERE id = 2"));
            var policy = await Assert.ThrowsAsync<PostgresException>(() => conn.ExecuteAsync("INSERT INTO notes (id, owner_name, content) VALUES (3, 'someone else', 'x')"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, policy.SqlState);
            var column = await Assert.ThrowsAsync<PostgresException>(() => conn.ExecuteAsync("UPDATE notes SET owner_name = 'x' WHERE id = 1"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, column.SqlState);
            Assert.Equal("b", await _db.ScalarAsync<string>("SELECT body FROM notes WHERE id = 2"));
        }
        else
        {
            // Before PostgreSQL 15 (documented): no security_invoker, so the view reads the table
            // with its owner's rights and the table's policy does not filter alice's rows.
            Assert.Equal(2L, await conn.ScalarAsync<long>("SELECT count(*) FROM notes"));
        }

        await conn.ExecuteAsync($"RESET ROLE; SET ROLE {nobody}");
        var denied = await Assert.ThrowsAsync<PostgresException>(() => conn.ScalarAsync<long>("SELECT count(*) FROM notes"));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, denied.SqlState);
        await conn.ExecuteAsync("RESET ROLE");

        await engine.CompleteAsync(migration.Id);
        await conn.ExecuteAsync($"SET ROLE {alice}");
        // After the contract alice reads the table itself, so its policy applies on every version
        // (before 15 she made no update through the view above).
        Assert.Equal(_db.Server.MajorVersion >= 15 ? "mine" : "a", await conn.ScalarAsync<string>("SELECT content FROM notes"));
    }

    [Fact]
    public async Task The_view_belongs_to_the_tables_owner_who_can_use_it_through_the_version_schema()
    {
        var owner = "zdt_owner_v_" + _db.DatabaseName;
        await _db.ExecuteAsync($"""
            CREATE ROLE {owner};
            CREATE TABLE owned (id int PRIMARY KEY, title text);
            INSERT INTO owned VALUES (1, 't');
            ALTER TABLE owned OWNER TO {owner};
            """);
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnByViewAsync("owned", "title", "heading", "rel_owner");

        Assert.Equal(owner, await _db.ScalarAsync<string>("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'rel_owner.owned'::regclass"));
        await using var conn = await _db.OpenWithSearchPathAsync("rel_owner,public");
        await conn.ExecuteAsync($"SET ROLE {owner}");
        Assert.Equal(1, await conn.ExecuteAsync("UPDATE owned SET heading = 'h' WHERE id = 1"));
        Assert.Equal("h", await conn.ScalarAsync<string>("SELECT heading FROM owned"));
        await conn.ExecuteAsync("RESET ROLE");
        await engine.UndoAsync(migration.Id);
    }

    [Fact]
    public async Task Bad_input_gives_specific_errors_and_changes_nothing()
    {
        await CreateItemsAsync("items_d");
        await CreateItemsAsync("items_d2");
        await _db.ExecuteAsync("""
            CREATE SCHEMA not_ours;
            CREATE SCHEMA other_d;
            CREATE TABLE other_d.items_d (id int PRIMARY KEY, label text);
            CREATE TABLE copy_d (id int PRIMARY KEY, v text);
            """);
        var engine = Engines.For(_db);
        var first = await engine.RenameColumnByViewAsync("items_d", "sku", "code", "rel_d");
        await engine.RenameColumnByViewAsync("items_d2", "sku", "code", "rel_d2");
        var before = await SnapshotAsync("items_d") + await SnapshotAsync("items_d2") + await CatalogStateAsync();

        async Task<ZdtException> Fails(string table, string column, string newName, string? version, string schema = "public")
            => await Assert.ThrowsAsync<ZdtException>(() => engine.PlanColumnRenameAsync(ColumnRenameViews.ViewRequest(table, column, newName, version, schema)));

        Assert.Equal("TableNotFound", (await Fails("no_such_table", "a", "b", "rel_x")).ErrorId);
        var missing = await Fails("items_d", "no_such_column", "b", "rel_d");
        Assert.Equal("ColumnNotFound", missing.ErrorId);
        Assert.Equal(ErrorKind.ObjectNotFound, missing.Kind);
        Assert.Contains("did you mean \"qty\"", (await Fails("items_d", "QTY", "quantity", "rel_d")).Message, StringComparison.Ordinal);
        Assert.Equal("ColumnExists", (await Fails("items_d", "qty", "created_at", "rel_d")).ErrorId);
        Assert.Equal("ColumnExists", (await Fails("items_d", "qty", "xmin", "rel_d")).ErrorId);
        Assert.Equal("SameName", (await Fails("items_d", "qty", "qty", "rel_d")).ErrorId);

        var notOurs = await Fails("copy_d", "v", "w", "not_ours");
        Assert.Equal("VersionSchemaNotOurs", notOurs.ErrorId);
        Assert.Equal(ErrorKind.ResourceExists, notOurs.Kind);
        Assert.Equal("InvalidVersionSchema", (await Fails("copy_d", "v", "w", "public")).ErrorId);
        Assert.Equal("InvalidVersionSchema", (await Fails("copy_d", "v", "w", "pg_mine")).ErrorId);
        Assert.Equal("InvalidVersionSchema", (await Fails("copy_d", "v", "w", "zdt")).ErrorId);
        Assert.Equal("IdentifierTooLong", (await Fails("copy_d", "v", "w", new string('v', 64))).ErrorId);

        // Already renamed in that version, a new name the version already gives, a version name as the column.
        var twice = await Fails("items_d", "sku", "code2", "rel_d");
        Assert.Equal("ColumnAlreadyRenamed", twice.ErrorId);
        Assert.Contains($"migration {first.Id}", twice.Message, StringComparison.Ordinal);
        Assert.Equal("ColumnExists", (await Fails("items_d", "qty", "code", "rel_d")).ErrorId);
        var byNewName = await Fails("items_d", "code", "code3", "rel_d");
        Assert.Equal("ColumnNotFound", byNewName.ErrorId);
        Assert.Contains("new name version schema", byNewName.Message, StringComparison.Ordinal);

        // The table is in another version already; another kind of migration on it is refused too.
        var elsewhere = await Fails("items_d", "qty", "quantity", "rel_other");
        Assert.Equal("MigrationAlreadyActive", elsewhere.ErrorId);
        Assert.Contains("rel_d", elsewhere.Message, StringComparison.Ordinal);
        var copy = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "items_d", "qty", "quantity")));
        Assert.Equal("MigrationAlreadyActive", copy.ErrorId);
        Assert.Equal("MigrationAlreadyActive", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanTableRenameAsync(new TableRenameRequest("public", "items_d", "items_dd")))).ErrorId);

        // A table of another schema with the same name cannot have its view in the same version schema.
        Assert.Equal("NameTaken", (await Fails("items_d", "label", "title", "rel_d", schema: "other_d")).ErrorId);

        Assert.Equal("VersionNotFound", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanContractVersionAsync("no_such_version"))).ErrorId);

        Assert.Equal(before, await SnapshotAsync("items_d") + await SnapshotAsync("items_d2") + await CatalogStateAsync());
    }

    [Fact]
    public async Task Views_on_the_renamed_column_keep_working_after_contract_but_a_view_on_the_version_view_blocks_it()
    {
        await CreateItemsAsync("items_e");
        await _db.ExecuteAsync("CREATE VIEW report_e AS SELECT id, sku FROM items_e");
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnByViewAsync("items_e", "sku", "code", "rel_e");

        // Something built on the version view: dropping the view would break it, so both contract and undo refuse.
        await _db.ExecuteAsync("CREATE VIEW on_version_e AS SELECT code FROM rel_e.items_e");
        Assert.Equal("CompatibilityViewInUse", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanContractAsync(migration.Id))).ErrorId);
        Assert.Equal("CompatibilityViewInUse", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanUndoAsync(migration.Id))).ErrorId);
        Assert.Equal("CompatibilityViewInUse", (await Assert.ThrowsAsync<ZdtException>(() => engine.PlanContractVersionAsync("rel_e"))).ErrorId);
        Assert.Equal("id, sku, qty, created_at", await ColumnsAsync("public", "items_e"));
        await _db.ExecuteAsync("DROP VIEW on_version_e");

        // A view on the table itself binds the column by number: it is allowed, named in the plan, and keeps its own column name.
        var plan = await engine.PlanContractAsync(migration.Id);
        Assert.Contains("\"public\".\"report_e\"", plan.Steps[0].Why, StringComparison.Ordinal);
        await engine.RunAsync(plan);
        Assert.Equal("id, sku", await ColumnsAsync("public", "report_e"));
        Assert.Equal("sku-7", await _db.ScalarAsync<string>("SELECT sku FROM report_e WHERE id = 7"));
        Assert.Equal("sku-7", await _db.ScalarAsync<string>("SELECT code FROM items_e WHERE id = 7"));
    }

    [Fact]
    public async Task WhatIf_planning_changes_nothing_and_shows_the_sql_that_then_runs()
    {
        await CreateItemsAsync("items_f");
        var engine = Engines.For(_db);

        var plan = await engine.PlanColumnRenameAsync(ColumnRenameViews.ViewRequest("items_f", "sku", "code", "rel_f"));
        var script = plan.ToScript(engine.Options.LockTimeout);

        Assert.False(await _db.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'rel_f')"));
        Assert.Contains("CREATE SCHEMA \"rel_f\";", script, StringComparison.Ordinal);
        var options = _db.Server.MajorVersion >= 15 ? " WITH (security_invoker = true)" : "";
        if (_db.Server.MajorVersion < 15)
        {
            // The plan says so, where the user reads it before anything runs.
            Assert.Contains("before PostgreSQL 15 the view checks permissions as its owner", script, StringComparison.Ordinal);
        }

        Assert.Contains($"CREATE VIEW \"rel_f\".\"items_f\"{options} AS SELECT \"id\", \"sku\" AS \"code\", \"qty\", \"created_at\" FROM \"public\".\"items_f\";", script, StringComparison.Ordinal);
        Assert.Contains("ACCESS SHARE on \"public\".\"items_f\"", script, StringComparison.Ordinal);
        Assert.DoesNotContain("ALTER TABLE", script, StringComparison.Ordinal);

        var migration = await engine.RunAsync(plan);
        var ran = (await engine.GetMigrationAsync(migration.Id)).Events.Single(e => e.ToPhase == "expanded").Sql!;
        foreach (var statement in plan.Steps[0].Statements)
        {
            Assert.Contains(statement + ";", ran, StringComparison.Ordinal);
        }

        await engine.UndoAsync(migration.Id);
    }

    [Theory]
    [InlineData("Mixed Case", "Sku Code", "New \"Name\"", "Release 2")]
    [InlineData("select", "from", "where", "order")]
    public async Task Names_that_need_quoting_work_through_the_whole_lifecycle(string table, string column, string newName, string version)
    {
        static string Q(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
        await _db.ExecuteAsync($"CREATE TABLE {Q(table)} (\"Id\" serial PRIMARY KEY, {Q(column)} text DEFAULT 'x')");
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnByViewAsync(table, column, newName, version);

        await using (var v2 = await _db.OpenWithSearchPathAsync(migration.Details["SearchPath"]))
        {
            await v2.ExecuteAsync($"INSERT INTO {Q(table)} ({Q(newName)}) VALUES ('y')");
            Assert.Equal(1L, await v2.ScalarAsync<long>($"SELECT count({Q(newName)}) FROM {Q(table)}"));
        }

        await engine.CompleteAsync(migration.Id);
        Assert.Equal(1L, await _db.ScalarAsync<long>($"SELECT count({Q(newName)}) FROM {Q(table)}"));
    }

    private async Task<string> ColumnsAsync(string schema, string relation)
        => (await _db.ScalarAsync<string>($"""
            SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
            WHERE attrelid = '"{schema}"."{relation}"'::regclass AND attnum > 0 AND NOT attisdropped
            """))!;

    /// <summary>Columns, constraints, indexes, grants of a table, as text to compare.</summary>
    private async Task<string> SnapshotAsync(string table)
        => (await _db.ScalarAsync<string>($"""
            SELECT concat_ws(E'\n',
              (SELECT relkind::text || ' ' || COALESCE(relacl::text, '') FROM pg_class WHERE oid = '"{table}"'::regclass),
              (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull || ' ' || COALESCE(attacl::text, '') || ' ' || COALESCE(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY attnum)
                 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = '"{table}"'::regclass AND attnum > 0 AND NOT attisdropped),
              (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname) FROM pg_constraint WHERE conrelid = '"{table}"'::regclass),
              (SELECT string_agg(pg_get_indexdef(indexrelid), ', ' ORDER BY indexrelid) FROM pg_index WHERE indrelid = '"{table}"'::regclass))
            """))!;

    /// <summary>Schemas, relations and ledger rows: what a refused request must leave as it was.</summary>
    private async Task<string> CatalogStateAsync()
        => (await _db.ScalarAsync<string>("""
            SELECT concat_ws(E'\n',
              (SELECT string_agg(nspname || ' ' || COALESCE(obj_description(oid, 'pg_namespace'), ''), ', ' ORDER BY nspname) FROM pg_namespace),
              (SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')),
              (SELECT string_agg(id || ' ' || phase || ' ' || COALESCE(column_name, '') || ' ' || spec::text, ', ' ORDER BY id) FROM zdt.migration))
            """))!;
}
