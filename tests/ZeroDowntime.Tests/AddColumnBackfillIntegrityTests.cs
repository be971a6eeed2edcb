using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// Add-Column with a backfill loses no write and misses no row: NULLs the application writes after
/// the expand are kept (as after a plain ADD COLUMN), rows the application moves during a walk over
/// ctid page ranges are still filled, and parity and contract count the rows still to fill.
/// </summary>
public class AddColumnBackfillIntegrityTests : IClassFixture<TestDatabase>
{
    private const string Marker = "zdt_filled_token";

    private readonly TestDatabase _db;

    public AddColumnBackfillIntegrityTests(TestDatabase db)
    {
        _db = db;
    }

    private static async Task<Migration> AddTokenAsync(MigrationEngine engine, string table, bool notNull = false)
        => await engine.RunAsync(await engine.PlanAddColumnAsync(new AddColumnRequest("public", table, "token", "uuid", "gen_random_uuid()", notNull)));

    /// <summary>
    /// Before PostgreSQL 14 a keyless table cannot be walked (no TID range scans): the addition is
    /// refused when planned, with the reason, and the table is left without the column.
    /// </summary>
    private async Task<bool> RefusedBeforeCtidRangesAsync(MigrationEngine engine, string table)
    {
        if (_db.Server.MajorVersion >= 14)
        {
            return false;
        }

        var refused = await Assert.ThrowsAsync<ZdtException>(() => AddTokenAsync(engine, table));
        Assert.Equal("NoBatchKey", refused.ErrorId);
        Assert.Contains("PostgreSQL 14", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await _db.ScalarAsync<long>($"SELECT count(*) FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname = 'token' AND NOT attisdropped"));
        return true;
    }

    /// <summary>Every write pattern of the application, the same on the migrated table and on its twin.</summary>
    private async Task ApplicationWritesAsync(string table)
    {
        await _db.ExecuteAsync($"""
            UPDATE {table} SET token = NULL WHERE id IN (5, 500);
            UPDATE {table} SET v = 'touched' WHERE id IN (600, 601);
            UPDATE {table} SET token = DEFAULT WHERE id = 650;
            INSERT INTO {table} (id, v, token) VALUES (2000, 'explicit null', NULL);
            INSERT INTO {table} (id, v) VALUES (2001, 'omitted');
            INSERT INTO {table} VALUES (2002, 'positional null', NULL);
            INSERT INTO {table} (id, v, token) VALUES (700, 'upsert', gen_random_uuid()) ON CONFLICT (id) DO UPDATE SET token = NULL;
            INSERT INTO {table} (id, v) VALUES (701, 'upsert other') ON CONFLICT (id) DO UPDATE SET v = 'upserted';
            """);
        // MERGE exists from PostgreSQL 15; before, the same rows are written by the upsert it amounts to.
        await _db.ExecuteAsync(_db.Server.MajorVersion >= 15
            ? $"""
                MERGE INTO {table} t USING (VALUES (800), (2003)) s(id) ON t.id = s.id
                  WHEN MATCHED THEN UPDATE SET token = NULL
                  WHEN NOT MATCHED THEN INSERT (id, v, token) VALUES (s.id, 'merged', NULL)
                """
            : $"INSERT INTO {table} (id, v, token) VALUES (800, 'merged', NULL), (2003, 'merged', NULL) ON CONFLICT (id) DO UPDATE SET token = NULL");
        await using var connection = await _db.OpenAsync();
        await using (var copy = await connection.BeginTextImportAsync($"COPY {table} (id, v, token) FROM STDIN"))
        {
            await copy.WriteAsync("3000\tcopied null\t\\N\n3001\tcopied value\t00000000-0000-0000-0000-000000000001\n");
        }

        await using var copyOmitted = await connection.BeginTextImportAsync($"COPY {table} (id, v) FROM STDIN");
        await copyOmitted.WriteAsync("3002\tcopied omitted\n");
    }

    /// <summary>Each row's id, v and whether token is NULL: what must be equal on the migrated table and its twin.</summary>
    private Task<string?> NullPatternAsync(string table)
        => _db.ScalarAsync<string>($"SELECT string_agg(id || ':' || v || ':' || (token IS NULL), ',' ORDER BY id) FROM {table}");

    private Task<long> LeftoversAsync(string table)
        => _db.ScalarAsync<long>($"""
            SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname LIKE 'zdt%' AND NOT attisdropped)
                 + (SELECT count(*) FROM pg_trigger WHERE tgrelid = '{table}'::regclass)
                 + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'zdt'::regnamespace AND proname LIKE 'fill\_' || '{table}'::regclass::oid || '\_%')
            """);

    [Fact]
    public async Task Nulls_the_application_writes_after_the_expand_are_kept_as_after_a_plain_add_column()
    {
        foreach (var t in new[] { "ac_nulls", "ac_nulls_plain" })
        {
            await _db.ExecuteAsync($"CREATE TABLE {t} (id int PRIMARY KEY, v text); INSERT INTO {t} SELECT g, 'x' || g FROM generate_series(1, 1000) g");
        }

        var engine = Engines.For(_db);
        var expanded = await AddTokenAsync(engine, "ac_nulls");
        Assert.Equal("Backfill", expanded.Strategy);
        await _db.ExecuteAsync("ALTER TABLE ac_nulls_plain ADD COLUMN token uuid DEFAULT gen_random_uuid()");

        // The backfill has done ids 1..100 when the application starts writing (5 is done, 500 is not).
        var part = await engine.BackfillAsync(expanded.Id, new BackfillOptions { BatchSize = 100, MaxBatches = 1 });
        Assert.Equal(MigrationPhase.Backfilling, part.Phase);
        await ApplicationWritesAsync("ac_nulls");
        await ApplicationWritesAsync("ac_nulls_plain");

        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(expanded.Id)).Phase);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(expanded.Id)).Phase);

        Assert.Equal(await NullPatternAsync("ac_nulls_plain"), await NullPatternAsync("ac_nulls"));
        Assert.Equal(
            "5,500,700,800,2000,2002,2003,3000",
            await _db.ScalarAsync<string>("SELECT string_agg(id::text, ',' ORDER BY id) FROM ac_nulls WHERE token IS NULL"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM ac_nulls WHERE id <= 1000 AND id NOT IN (5, 500, 700, 800) AND token IS NULL"));
        Assert.Equal(await _db.ScalarAsync<long>("SELECT count(token) FROM ac_nulls"), await _db.ScalarAsync<long>("SELECT count(DISTINCT token) FROM ac_nulls"));

        // The end state is the plain statement's: same column, no marker, trigger or function left.
        Assert.Equal(await Tables.ColumnAsync(_db, "ac_nulls_plain", "token"), await Tables.ColumnAsync(_db, "ac_nulls", "token"));
        Assert.Equal(0L, await LeftoversAsync("ac_nulls"));
        Assert.Equal(
            await _db.ScalarAsync<string>("SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'ac_nulls_plain'::regclass AND attnum > 0 AND NOT attisdropped"),
            await _db.ScalarAsync<string>("SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'ac_nulls'::regclass AND attnum > 0 AND NOT attisdropped"));
    }

    /// <summary>
    /// A table without a key, full pages (fillfactor 100, ~25 rows a page) and free space only in its
    /// first pages: an UPDATE that makes a row longer cannot stay on its page, so the new version goes
    /// behind the walk (the free space) or past its upper bound (a new page).
    /// </summary>
    private async Task CreateKeylessTableAsync(string table)
    {
        await _db.ExecuteAsync($"""
            CREATE TABLE {table} (a int, b text) WITH (fillfactor = 100, autovacuum_enabled = false);
            INSERT INTO {table} SELECT g, repeat('x', 300) FROM generate_series(1, 3000) g;
            CREATE INDEX ON {table} (a);
            DELETE FROM {table} WHERE a <= 250 AND a % 2 = 0;
            """);
        await _db.ExecuteAsync($"VACUUM {table}");
    }

    private async Task<(long NextPage, long UpperPage)> WalkAsync(long migrationId)
    {
        var next = await _db.ScalarAsync<long>($"SELECT (backfill_checkpoint->>'nextPage')::bigint FROM zdt.migration WHERE id = {migrationId}");
        var upper = await _db.ScalarAsync<long>($"SELECT (backfill_checkpoint->>'upperPage')::bigint FROM zdt.migration WHERE id = {migrationId}");
        return (next, upper);
    }

    private static string OutsideWalk(long next, long upper) => $"((ctid::text::point)[0] < {next} OR (ctid::text::point)[0] >= {upper})";

    [Fact]
    public async Task Rows_the_application_moves_during_a_ctid_walk_are_filled()
    {
        await CreateKeylessTableAsync("ac_nokey");
        var engine = Engines.For(_db);
        if (await RefusedBeforeCtidRangesAsync(engine, "ac_nokey"))
        {
            return;
        }

        var expanded = await AddTokenAsync(engine, "ac_nokey");
        Assert.Contains("by ctid", (await engine.PlanBackfillAsync(expanded.Id)).Steps[0].Title, StringComparison.Ordinal);

        // Two batches of 10 pages; then the application rewrites rows the walk has not reached yet.
        await engine.BackfillAsync(expanded.Id, new BackfillOptions { BatchSize = 500, MaxBatches = 2 });
        var (next, upper) = await WalkAsync(expanded.Id);
        Assert.True(next < upper, $"the walk is at page {next} of {upper}");
        await _db.ExecuteAsync($"UPDATE ac_nokey SET b = repeat('y', 1000) WHERE a > 2400");

        // The test only proves something if rows really moved where the walk will not look.
        var moved = await _db.ScalarAsync<long>($"SELECT count(*) FROM ac_nokey WHERE a > 2400 AND {OutsideWalk(next, upper)}");
        Assert.True(moved > 0, "no updated row moved behind the walk or past its upper bound");

        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(expanded.Id, new BackfillOptions { BatchSize = 500 })).Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM ac_nokey WHERE token IS NULL"));
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(expanded.Id)).Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM ac_nokey WHERE token IS NULL"));
        Assert.Equal(0L, await LeftoversAsync("ac_nokey"));
    }

    [Fact]
    public async Task A_ctid_walk_is_confirmed_by_a_clean_pass_so_rows_moved_by_writes_that_bypass_triggers_are_filled_too()
    {
        await CreateKeylessTableAsync("ac_replica");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);
        if (await RefusedBeforeCtidRangesAsync(engine, "ac_replica"))
        {
            return;
        }

        var expanded = await AddTokenAsync(engine, "ac_replica");
        await engine.BackfillAsync(expanded.Id, new BackfillOptions { BatchSize = 500, MaxBatches = 2 });
        var (next, upper) = await WalkAsync(expanded.Id);

        // Logical replication's apply (and any session with session_replication_role = replica) fires
        // no ordinary trigger: these rows move without being filled.
        await _db.ExecuteAsync("SET session_replication_role = replica; UPDATE ac_replica SET b = repeat('y', 1000) WHERE a > 2400; RESET session_replication_role");
        var hidden = await _db.ScalarAsync<long>($"SELECT count(*) FROM ac_replica WHERE {Marker} IS NULL AND {OutsideWalk(next, upper)}");
        Assert.True(hidden > 0, "no unfilled row moved behind the walk or past its upper bound");

        var backfilled = await engine.BackfillAsync(expanded.Id, new BackfillOptions { BatchSize = 500 });

        Assert.Equal(MigrationPhase.Backfilled, backfilled.Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>($"SELECT count(*) FROM ac_replica WHERE token IS NULL OR {Marker} IS NULL"));
        Assert.Contains("walking the table again to confirm", observer.AllText, StringComparison.Ordinal);
        Assert.Contains("found no row left to fill", observer.AllText, StringComparison.Ordinal);
        Assert.True((await engine.TestColumnParityAsync(expanded.Id)).InParity);
    }

    [Fact]
    public async Task Parity_and_contract_count_the_rows_still_to_fill_and_refuse_until_a_backfill_fills_them()
    {
        await _db.ExecuteAsync("CREATE TABLE ac_gate (id int PRIMARY KEY, v text); INSERT INTO ac_gate SELECT g, 'x' FROM generate_series(1, 500) g");
        var engine = Engines.For(_db);
        var expanded = await AddTokenAsync(engine, "ac_gate");

        await engine.BackfillAsync(expanded.Id, new BackfillOptions { BatchSize = 100, MaxBatches = 1 });
        var during = await engine.TestColumnParityAsync(expanded.Id);
        Assert.Equal(400L, during.Mismatches);
        Assert.Contains("have not been given its value", during.MismatchMeaning, StringComparison.Ordinal);

        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(expanded.Id)).Phase);
        Assert.True((await engine.TestColumnParityAsync(expanded.Id)).InParity);

        // Rows the backfill did not reach, as a write that bypassed the triggers would leave them.
        await _db.ExecuteAsync($"SET session_replication_role = replica; UPDATE ac_gate SET token = NULL, {Marker} = NULL WHERE id <= 4; RESET session_replication_role");
        var parity = await engine.TestColumnParityAsync(expanded.Id);
        Assert.False(parity.InParity);
        Assert.Equal(4L, parity.Mismatches);
        Assert.Equal(MigrationPhase.Backfilled, (await engine.GetMigrationAsync(expanded.Id)).Phase);

        var before = await Tables.SnapshotAsync(_db);
        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.CompleteAsync(expanded.Id));
        Assert.Equal("RowsPending", refused.ErrorId);
        Assert.Contains("4 row(s)", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Invoke-Backfill", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
        Assert.Equal(MigrationPhase.Backfilled, (await engine.GetMigrationAsync(expanded.Id)).Phase);

        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(expanded.Id)).Phase);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(expanded.Id)).Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM ac_gate WHERE token IS NULL"));
        Assert.Equal(0L, await LeftoversAsync("ac_gate"));
    }

    [Fact]
    public async Task The_marker_is_planned_as_ddl_and_undo_removes_all_of_it()
    {
        await _db.ExecuteAsync("CREATE TABLE ac_undo (id int PRIMARY KEY, v text); INSERT INTO ac_undo SELECT g, 'x' FROM generate_series(1, 300) g");
        var engine = Engines.For(_db);
        var before = await Tables.SnapshotAsync(_db);
        var fileNode = await _db.ScalarAsync<long>("SELECT pg_relation_filenode('ac_undo')::bigint");

        var plan = await engine.PlanAddColumnAsync(new AddColumnRequest("public", "ac_undo", "token", "uuid", "gen_random_uuid()"));
        var script = plan.ToScript(engine.Options.LockTimeout);
        Assert.Contains($"ALTER TABLE \"public\".\"ac_undo\" ADD COLUMN \"{Marker}\" boolean;\nALTER TABLE \"public\".\"ac_undo\" ALTER COLUMN \"{Marker}\" SET DEFAULT true;", script, StringComparison.Ordinal);
        Assert.Contains("BEFORE UPDATE OF \"token\" ON \"public\".\"ac_undo\"", script, StringComparison.Ordinal);
        Assert.Contains("NEW.\"token\" := (gen_random_uuid());", script, StringComparison.Ordinal);
        Assert.Single(plan.Steps);

        var expanded = await engine.RunAsync(plan);
        Assert.Equal(fileNode, await _db.ScalarAsync<long>("SELECT pg_relation_filenode('ac_undo')::bigint"));
        Assert.Equal(300L, await _db.ScalarAsync<long>($"SELECT count(*) FROM ac_undo WHERE {Marker} IS NULL"));
        await _db.ExecuteAsync("INSERT INTO ac_undo (id, v) VALUES (301, 'new')");
        Assert.True(await _db.ScalarAsync<bool>($"SELECT {Marker} FROM ac_undo WHERE id = 301"));
        Assert.Equal($"\"{Marker}\"", expanded.Details["PendingMarker"]);

        var backfill = string.Join("\n", (await engine.PlanBackfillAsync(expanded.Id)).Steps[0].Statements);
        Assert.Contains($"SET \"token\" = DEFAULT, \"{Marker}\" = true", backfill, StringComparison.Ordinal);
        await engine.BackfillAsync(expanded.Id, new BackfillOptions { BatchSize = 100, MaxBatches = 1 });

        var undo = await engine.PlanUndoAsync(expanded.Id);
        Assert.Contains($"DROP COLUMN IF EXISTS \"{Marker}\"", undo.ToScript(engine.Options.LockTimeout), StringComparison.Ordinal);
        Assert.Equal(MigrationPhase.Undone, (await engine.RunAsync(undo)).Phase);
        await _db.ExecuteAsync("DELETE FROM ac_undo WHERE id = 301");
        Assert.Equal(before, await Tables.SnapshotAsync(_db));
        Assert.Equal(0L, await LeftoversAsync("ac_undo"));
    }

    [Fact]
    public async Task A_not_null_addition_still_fills_nulls_the_application_wrote_and_drops_its_marker_at_contract()
    {
        await _db.ExecuteAsync("CREATE TABLE ac_nn (id int PRIMARY KEY, v text); INSERT INTO ac_nn SELECT g, 'x' FROM generate_series(1, 300) g");
        var engine = Engines.For(_db);
        var expanded = await AddTokenAsync(engine, "ac_nn", notNull: true);
        await _db.ExecuteAsync("UPDATE ac_nn SET token = NULL WHERE id = 7; INSERT INTO ac_nn (id, v, token) VALUES (400, 'n', NULL)");
        await engine.BackfillAsync(expanded.Id);

        var contract = await engine.PlanContractAsync(expanded.Id);
        Assert.Contains("SET NOT NULL", contract.ToScript(engine.Options.LockTimeout), StringComparison.Ordinal);
        Assert.Contains($"DROP COLUMN IF EXISTS \"{Marker}\"", contract.Steps[^1].Sql, StringComparison.Ordinal);
        Assert.Equal(MigrationPhase.Completed, (await engine.RunAsync(contract)).Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM ac_nn WHERE token IS NULL"));
        Assert.Equal("uuid notnull=true default=gen_random_uuid()", await Tables.ColumnAsync(_db, "ac_nn", "token"));
        Assert.Equal(0L, await LeftoversAsync("ac_nn"));
    }
}
