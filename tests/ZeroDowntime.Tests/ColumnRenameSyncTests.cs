using Npgsql;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// The copy strategy's sync follows what each write meant (issue 9, cases 1 and 2), and its end
/// state keeps what a plain RENAME COLUMN keeps (cases 5, 6, 14, 16). docs/architecture.md,
/// "Sync semantics of a column copy", is the table these tests check.
/// </summary>
public class ColumnRenameSyncTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public ColumnRenameSyncTests(TestDatabase db)
    {
        _db = db;
    }

    /// <summary>A table and its twin (already renamed by plain DDL): 200 rows, address text DEFAULT 'unknown'.</summary>
    private async Task CreatePairAsync(string table, string @default = "'unknown'", string type = "text")
    {
        await _db.ExecuteAsync($"""
            CREATE TABLE {table} (id int PRIMARY KEY, code text NOT NULL, qty int NOT NULL DEFAULT 1, address {type} DEFAULT {@default});
            INSERT INTO {table} SELECT g, 'c' || g, 1, 'a' || g FROM generate_series(1, 200) g;
            CREATE TABLE {table}_twin (LIKE {table} INCLUDING ALL);
            INSERT INTO {table}_twin SELECT * FROM {table};
            ALTER TABLE {table}_twin RENAME COLUMN address TO billing;
            """);
    }

    [Fact]
    public async Task Every_write_pattern_through_either_name_before_and_after_backfill_stores_what_the_plain_rename_stores()
    {
        await CreatePairAsync("sync_matrix");
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnAsync("sync_matrix", "address", "billing");
        await using var connection = await _db.OpenAsync();

        async Task RoundAsync(int newIds, int existingIds, bool backfilled)
        {
            for (var pattern = 0; pattern < WritePatterns.Count; pattern++)
            {
                foreach (var (name, offset) in new[] { ("address", 0), ("billing", 1) })
                {
                    if (!backfilled && name == "billing" && WritePatterns.ReadsTheColumn(pattern))
                    {
                        // Reading the new name before the backfill sees NULL in rows it has not
                        // reached (documented: the new version reads only after Backfilled).
                        continue;
                    }

                    var newId = newIds + (pattern * 10) + (offset * 5);
                    var existingId = existingIds + (pattern * 2) + offset;
                    var tag = $"v{pattern}-{name}";
                    await WritePatterns.RunAsync(connection, pattern, "sync_matrix", name, newId, existingId, tag);
                    await WritePatterns.RunAsync(connection, pattern, "sync_matrix_twin", "billing", newId, existingId, tag);
                }
            }
        }

        // Before the backfill: rows 1..40 were never copied to billing when they are written.
        await RoundAsync(1000, 1, backfilled: false);

        // Case 1: SET billing = NULL (pattern 5) on a row the backfill had not reached stays NULL in both names.
        Assert.Equal("<NULL>|<NULL>", await PairAsync("sync_matrix", 1 + (5 * 2) + 1));
        Assert.Equal("<NULL>|<NULL>", await PairAsync("sync_matrix", 1 + (5 * 2)));
        Assert.Equal("v4-billing|v4-billing", await PairAsync("sync_matrix", 1 + (4 * 2) + 1));
        Assert.Equal("a100|<NULL>", await PairAsync("sync_matrix", 100));

        // Case 2: an explicit NULL INSERT through either name stores NULL, not the default.
        Assert.Equal("<NULL>|<NULL>", await PairAsync("sync_matrix", 1000 + 10));
        Assert.Equal("<NULL>|<NULL>", await PairAsync("sync_matrix", 1000 + 10 + 5));
        Assert.Equal("unknown|unknown", await PairAsync("sync_matrix", 1000 + 20 + 5));

        await engine.BackfillAsync(migration.Id);
        await RoundAsync(2000, 41, backfilled: true);
        var parity = await engine.TestColumnParityAsync(migration.Id);
        Assert.True(parity.InParity, parity.ToString());
        await engine.CompleteAsync(migration.Id);

        Assert.Equal(await WritePatterns.RowsAsync(connection, "sync_matrix_twin", "billing"), await WritePatterns.RowsAsync(connection, "sync_matrix", "billing"));
    }

    private async Task<string> PairAsync(string table, int id)
        => (await _db.ScalarAsync<string>($"SELECT COALESCE(address, '<NULL>') || '|' || COALESCE(billing, '<NULL>') FROM {table} WHERE id = {id}"))!;

    [Fact]
    public async Task A_volatile_default_is_evaluated_once_per_insert_and_the_one_ambiguous_write_is_warned_about()
    {
        await _db.ExecuteAsync("""
            CREATE SEQUENCE sync_seq_ticket;
            CREATE TABLE sync_seq (id int PRIMARY KEY, ticket bigint DEFAULT nextval('sync_seq_ticket'));
            ALTER SEQUENCE sync_seq_ticket OWNED BY sync_seq.ticket;
            INSERT INTO sync_seq (id) SELECT g FROM generate_series(1, 10) g;
            """);
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var migration = await engine.RenameColumnAsync("sync_seq", "ticket", "serial_no");

        Assert.Contains(observer.Warnings, w => w.Contains("volatile", StringComparison.Ordinal) && w.Contains("-Strategy View", StringComparison.Ordinal));
        var before = await _db.ScalarAsync<long>("SELECT last_value FROM sync_seq_ticket");
        await _db.ExecuteAsync("INSERT INTO sync_seq (id) VALUES (11)");
        await _db.ExecuteAsync("INSERT INTO sync_seq (id, ticket) VALUES (12, NULL)");
        await _db.ExecuteAsync("INSERT INTO sync_seq (id, serial_no) VALUES (13, 4242)");
        await _db.ExecuteAsync("INSERT INTO sync_seq (id, serial_no) VALUES (14, NULL)");
        await _db.ExecuteAsync("UPDATE sync_seq SET serial_no = DEFAULT WHERE id = 1");

        // Omitted: one sequence value, the same in both names.
        Assert.Equal($"{before + 1}|{before + 1}", await TicketsAsync(11));
        Assert.Equal("<NULL>|<NULL>", await TicketsAsync(12));
        Assert.Equal("4242|4242", await TicketsAsync(13));

        // The documented exceptions (the warning above): an explicit NULL through the new name takes
        // the default; SET new = DEFAULT stores NULL (the new column has no default yet).
        Assert.Equal("NOT NULL", await _db.ScalarAsync<string>("SELECT CASE WHEN ticket IS NOT NULL AND ticket = serial_no THEN 'NOT NULL' END FROM sync_seq WHERE id = 14"));
        Assert.Equal("<NULL>|<NULL>", await TicketsAsync(1));

        await engine.BackfillAsync(migration.Id);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        await engine.CompleteAsync(migration.Id);
        Assert.Equal("bigint notnull=false default=nextval('sync_seq_ticket'::regclass)", await Tables.ColumnAsync(_db, "sync_seq", "serial_no"));
        Assert.Equal("sync_seq.serial_no", await _db.ScalarAsync<string>("SELECT d.refobjid::regclass || '.' || a.attname FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid WHERE d.objid = 'sync_seq_ticket'::regclass AND d.deptype = 'a'"));
    }

    private async Task<string> TicketsAsync(int id)
        => (await _db.ScalarAsync<string>($"SELECT COALESCE(ticket::text, '<NULL>') || '|' || COALESCE(serial_no::text, '<NULL>') FROM sync_seq WHERE id = {id}"))!;

    [Fact]
    public async Task A_unique_constraint_on_the_column_is_kept_as_a_constraint()
    {
        await _db.ExecuteAsync("CREATE TABLE sync_uq (id int PRIMARY KEY, email text, CONSTRAINT sync_uq_email_key UNIQUE (email)); INSERT INTO sync_uq SELECT g, 'u' || g FROM generate_series(1, 100) g;");
        var engine = Engines.For(_db);

        var migration = await engine.RenameColumnUpToVerifiedAsync("sync_uq", "email", "mail");
        await engine.CompleteAsync(migration.Id);

        Assert.Equal("sync_uq_mail_key UNIQUE (mail)", await _db.ScalarAsync<string>("SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'sync_uq'::regclass AND contype = 'u'"));
        var duplicate = await Assert.ThrowsAsync<PostgresException>(() => _db.ExecuteAsync("INSERT INTO sync_uq VALUES (1001, 'u1')"));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, duplicate.SqlState);
    }

    [Fact]
    public async Task Replica_identity_cluster_mark_index_comment_and_extended_statistics_are_carried_to_the_new_column()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE sync_ri (id int PRIMARY KEY, a text NOT NULL, b int);
            INSERT INTO sync_ri SELECT g, 'v' || g, g FROM generate_series(1, 1000) g;
            CREATE UNIQUE INDEX sync_ri_a ON sync_ri (a);
            ALTER TABLE sync_ri REPLICA IDENTITY USING INDEX sync_ri_a;
            COMMENT ON INDEX sync_ri_a IS 'natural key';
            CLUSTER sync_ri USING sync_ri_a;
            CREATE STATISTICS sync_ri_stats ON a, b FROM sync_ri;
            CREATE PUBLICATION sync_ri_pub FOR TABLE sync_ri;
            """);
        var engine = Engines.For(_db);

        var migration = await engine.RenameColumnUpToVerifiedAsync("sync_ri", "a", "code");
        await engine.CompleteAsync(migration.Id);

        Assert.Equal("i|sync_ri_code|sync_ri_code|natural key", await _db.ScalarAsync<string>("""
            SELECT relreplident::text
                   || '|' || (SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'sync_ri'::regclass AND indisreplident)
                   || '|' || (SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'sync_ri'::regclass AND indisclustered)
                   || '|' || obj_description('sync_ri_code'::regclass, 'pg_class')
            FROM pg_class WHERE oid = 'sync_ri'::regclass
            """));
        Assert.Equal("CREATE STATISTICS public.sync_ri_stats ON b, code FROM sync_ri", await _db.ScalarAsync<string>("SELECT pg_get_statisticsobjdef(oid) FROM pg_statistic_ext WHERE stxrelid = 'sync_ri'::regclass"));

        // In the publication, UPDATE and DELETE need the replica identity.
        await _db.ExecuteAsync("UPDATE sync_ri SET b = b + 1 WHERE id = 1; DELETE FROM sync_ri WHERE id = 2;");
    }

    [Fact]
    public async Task A_unique_nulls_not_distinct_index_is_built_at_contract_once_the_new_column_is_filled()
    {
        if (_db.Server.MajorVersion < 15)
        {
            // NULLS NOT DISTINCT is PostgreSQL 15 syntax: there is no such index to carry before.
            var unknown = await Assert.ThrowsAsync<PostgresException>(() => _db.ExecuteAsync("CREATE TABLE sync_nnd (a text); CREATE UNIQUE INDEX ON sync_nnd (a) NULLS NOT DISTINCT"));
            Assert.Equal(PostgresErrorCodes.SyntaxError, unknown.SqlState);
            return;
        }

        await _db.ExecuteAsync("""
            CREATE TABLE sync_nnd (id int PRIMARY KEY, a text);
            INSERT INTO sync_nnd SELECT g, 'v' || g FROM generate_series(1, 1000) g;
            CREATE UNIQUE INDEX sync_nnd_a ON sync_nnd (a) NULLS NOT DISTINCT;
            """);
        var engine = Engines.For(_db);

        var migration = await engine.RenameColumnAsync("sync_nnd", "a", "b");
        Assert.Equal(MigrationPhase.Expanded, migration.Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_index WHERE indrelid = 'sync_nnd'::regclass AND NOT indisprimary AND indexrelid <> 'sync_nnd_a'::regclass"));
        await engine.BackfillAsync(migration.Id);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        var contract = await engine.PlanContractAsync(migration.Id);
        Assert.Contains(contract.Steps, s => s.Sql.Contains("CREATE UNIQUE INDEX CONCURRENTLY \"sync_nnd_b\"", StringComparison.Ordinal) && s.Sql.Contains("NULLS NOT DISTINCT", StringComparison.Ordinal));
        await engine.CompleteAsync(migration.Id);

        Assert.Equal("CREATE UNIQUE INDEX sync_nnd_b ON public.sync_nnd USING btree (b) NULLS NOT DISTINCT", await _db.ScalarAsync<string>("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'sync_nnd'::regclass AND NOT indisprimary"));
        await _db.ExecuteAsync("INSERT INTO sync_nnd VALUES (2001, NULL)");
        var second = await Assert.ThrowsAsync<PostgresException>(() => _db.ExecuteAsync("INSERT INTO sync_nnd VALUES (2002, NULL)"));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, second.SqlState);
    }

    [Fact]
    public async Task Sync_functions_of_tables_whose_names_run_together_do_not_collide_and_a_taken_name_is_refused_clearly()
    {
        await _db.ExecuteAsync("""
            CREATE SCHEMA public_x;
            CREATE TABLE public.x_y (id int PRIMARY KEY, a text);
            CREATE TABLE public_x.y (id int PRIMARY KEY, a text);
            CREATE TABLE public.x_z (id int PRIMARY KEY, a text);
            """);
        var engine = Engines.For(_db);

        var first = await engine.RenameColumnAsync("x_y", "a", "b");
        var second = await engine.RenameColumnAsync("y", "a", "b", "public_x");
        Assert.Equal(MigrationPhase.Expanded, first.Phase);
        Assert.Equal(MigrationPhase.Expanded, second.Phase);
        Assert.Equal(2L, await _db.ScalarAsync<long>("SELECT count(DISTINCT tgfoid) FROM pg_trigger WHERE tgname LIKE 'zz_zdt_sync_%' AND tgrelid IN ('public.x_y'::regclass, 'public_x.y'::regclass)"));

        // A function already under the name this rename would derive: refused before anything changes.
        var oid = await _db.ScalarAsync<long>("SELECT 'public.x_z'::regclass::oid::bigint");
        await _db.ExecuteAsync($"CREATE FUNCTION zdt.sync_{oid}_x_z_a() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$");
        var before = await Tables.SnapshotAsync(_db);
        var taken = await Assert.ThrowsAsync<ZdtException>(() => engine.RenameColumnAsync("x_z", "a", "b"));
        Assert.Equal("NameTaken", taken.ErrorId);
        Assert.Contains($"sync_{oid}_x_z_a", taken.Message, StringComparison.Ordinal);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
    }
    [Fact]
    public async Task Dependents_a_copy_cannot_carry_are_all_named_in_one_refusal_before_anything_changes()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE sync_refused (id int PRIMARY KEY, a text, b text);
            CREATE VIEW sync_refused_v AS SELECT id, a FROM sync_refused;
            ALTER TABLE sync_refused ENABLE ROW LEVEL SECURITY;
            CREATE POLICY sync_refused_p ON sync_refused USING (a <> 'secret');
            CREATE FUNCTION sync_refused_f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
            CREATE TRIGGER sync_refused_t BEFORE UPDATE OF a ON sync_refused FOR EACH ROW EXECUTE FUNCTION sync_refused_f();
            """);
        // A publication's column list is PostgreSQL 15 syntax; before, a publication carries whole rows.
        var withColumnList = _db.Server.MajorVersion >= 15;
        if (withColumnList)
        {
            await _db.ExecuteAsync("CREATE PUBLICATION sync_refused_pub FOR TABLE sync_refused (id, a)");
        }

        var before = await Tables.SnapshotAsync(_db);

        var refused = await Assert.ThrowsAsync<ZdtException>(() => Engines.For(_db).RenameColumnAsync("sync_refused", "a", "c"));

        Assert.Equal("ColumnCannotBeCopied", refused.ErrorId);
        foreach (var named in withColumnList ? new[] { "sync_refused_v", "sync_refused_p", "sync_refused_t", "sync_refused_pub" } : new[] { "sync_refused_v", "sync_refused_p", "sync_refused_t" })
        {
            Assert.Contains(named, refused.Message, StringComparison.Ordinal);
        }

        Assert.Equal(before, await Tables.SnapshotAsync(_db));
    }
}
