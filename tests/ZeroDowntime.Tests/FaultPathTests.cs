using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// Faults in the middle of a phase: the process killed (SIGKILL of a child process running the
/// phase), its backends terminated (pg_terminate_backend), statements timed out. After each, the
/// ledger must say where the migration stands, and the way it advises must work: either the table
/// is exactly as before, or the phase can be continued or undone to a table with valid indexes.
/// </summary>
public class FaultPathTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public FaultPathTests(TestDatabase db)
    {
        _db = db;
    }

    /// <summary>id, a text column with a default, a plain index and a check on it, 2,000 rows.</summary>
    private async Task CreateTableAsync(string name, int rows = 2000, bool notNull = false)
    {
        await _db.ExecuteAsync($"""
            CREATE TABLE {name} (id int PRIMARY KEY, a text{(notNull ? " NOT NULL" : "")} DEFAULT 'dflt' CHECK (a <> ''), qty int);
            CREATE INDEX {name}_a_idx ON {name} (a);
            INSERT INTO {name} SELECT g, 'v' || g, g FROM generate_series(1, {rows}) g;
            """);
    }

    private static EngineOptions ShortRetry => new()
    {
        LockTimeout = TimeSpan.FromMilliseconds(100),
        LockRetryTimeout = TimeSpan.FromSeconds(1),
        LockRetryInitialDelay = TimeSpan.FromMilliseconds(50),
        LockRetryMaxDelay = TimeSpan.FromMilliseconds(200),
    };

    private async Task<Migration> LatestMigrationAsync(MigrationEngine engine, string table)
        => (await engine.GetMigrationsAsync(new MigrationQuery { Table = table })).OrderBy(m => m.Id).Last();

    // ---- case 7: an expand that fails in a later step -------------------------------------------

    [Fact]
    public async Task Expand_whose_index_build_cannot_finish_is_undone_and_the_table_is_exactly_as_before()
    {
        await CreateTableAsync("f_old_snapshot");
        var before = await Faults.SchemaAsync(_db);
        var engine = Faults.Engine(_db, "f-old-snapshot", ShortRetry);

        // An old snapshot keeps CREATE INDEX CONCURRENTLY waiting longer than -LockRetryTimeout.
        await using (var snapshot = await Faults.OpenOldSnapshotAsync(_db))
        {
            var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RenameColumnAsync("f_old_snapshot", "a", "b"));
            Assert.True(error.ErrorId == "LockRetryTimeoutExceeded", error.Message);
        }

        await Faults.AssertSchemaAsync(_db, before);
        var migration = await LatestMigrationAsync(engine, "f_old_snapshot");
        Assert.Equal(MigrationPhase.Failed, migration.Phase);
        Assert.Contains("exactly as before", migration.LastError);
        Assert.Equal("text notnull=false default='dflt'::text", await Tables.ColumnAsync(_db, "f_old_snapshot", "a"));
    }

    [Fact]
    public async Task Expand_whose_index_build_backend_is_terminated_is_undone_and_the_table_is_exactly_as_before()
    {
        await CreateTableAsync("f_term_expand");
        var before = await Faults.SchemaAsync(_db);
        var engine = Faults.Engine(_db, "f-term-expand");
        await Faults.TerminateWhileWaitingAsync(_db, () => engine.RenameColumnAsync("f_term_expand", "a", "b"), "f-term-expand", "CREATE INDEX CONCURRENTLY");

        await Faults.AssertSchemaAsync(_db, before);
        var migration = await LatestMigrationAsync(engine, "f_term_expand");
        Assert.Equal(MigrationPhase.Failed, migration.Phase);
        Assert.Contains("exactly as before", migration.LastError);
    }

    [Fact]
    public async Task Expand_that_cannot_be_undone_automatically_stays_Expanding_says_so_and_Undo_Migration_restores_the_table()
    {
        await CreateTableAsync("f_stuck");
        var before = await Faults.SchemaAsync(_db);
        var engine = Faults.Engine(_db, "f-stuck", ShortRetry);
        Task<Migration> expand;
        await using (var snapshot = await Faults.OpenOldSnapshotAsync(_db))
                {
            // The index build waits for the old snapshot and gives up after -LockRetryTimeout; the
            // automatic undo then needs ACCESS EXCLUSIVE, which a reader taking ACCESS SHARE meanwhile denies it.
            expand = engine.RenameColumnAsync("f_stuck", "a", "b");
            await Faults.WaitForLockWaitAsync(_db, "f-stuck", "CREATE INDEX CONCURRENTLY");
            await using var holder = await LockHolder.HoldAsync(_db, "f_stuck", "ACCESS SHARE");
            var error = await Assert.ThrowsAsync<ZdtException>(() => expand);
            Assert.Equal(ErrorIds.ExpandFailedUndoNeeded, error.ErrorId);
            Assert.Contains("Undo-Migration -Id", error.Message);
        }

        var migration = await LatestMigrationAsync(engine, "f_stuck");
        Assert.Equal(MigrationPhase.Expanding, migration.Phase);
        Assert.Contains("Undo-Migration -Id " + migration.Id, migration.LastError);
        Assert.NotEqual(before, await Faults.SchemaAsync(_db));

        var undone = await engine.UndoAsync(migration.Id);
        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        await Faults.AssertSchemaAsync(_db, before);
    }

    // ---- case 12: a process killed during the expand ---------------------------------------------

    [Fact]
    public async Task Process_killed_during_expand_leaves_Expanding_the_rerun_advises_Undo_Migration_and_undo_restores_the_table()
    {
        await CreateTableAsync("f_kill_expand");
        var before = await Faults.SchemaAsync(_db);
        await using (var snapshot = await Faults.OpenOldSnapshotAsync(_db))
        await using (var host = FaultHost.Start(Faults.ConnectionString(_db, "f-kill-expand"), "expand-rename", "f_kill_expand", "a", "b"))
        {
            await Faults.WaitForLockWaitAsync(_db, "f-kill-expand", "CREATE INDEX CONCURRENTLY");
            await host.KillAsync();
        }

        // The server finishes the build once the snapshot is gone (a waiting backend does not notice its client died).
        await Faults.WaitForNoSessionAsync(_db, "f-kill-expand");
        var engine = Faults.Engine(_db, "f-kill-expand-after");
        var migration = await LatestMigrationAsync(engine, "f_kill_expand");
        Assert.Equal(MigrationPhase.Expanding, migration.Phase);

        var again = await Assert.ThrowsAsync<ZdtException>(() => engine.RenameColumnAsync("f_kill_expand", "a", "b"));
        Assert.Equal(ErrorIds.MigrationAlreadyActive, again.ErrorId);
        Assert.Contains($"Undo-Migration -Id {migration.Id}", again.Message);
        Assert.DoesNotContain("Complete-Contract", again.Message);

        Assert.Equal(MigrationPhase.Undone, (await engine.UndoAsync(migration.Id)).Phase);
        await Faults.AssertSchemaAsync(_db, before);
        Assert.Equal(MigrationPhase.Expanded, (await engine.RenameColumnAsync("f_kill_expand", "a", "b")).Phase);
    }

    [Fact]
    public async Task Set_column_not_null_killed_while_it_waits_for_its_lock_can_be_undone_and_one_whose_backend_is_terminated_fails_cleanly()
    {
        await _db.ExecuteAsync("CREATE TABLE f_nn (id int PRIMARY KEY, a text); INSERT INTO f_nn SELECT g, 'v' || g FROM generate_series(1, 1000) g;");
        var before = await Faults.SchemaAsync(_db);

        // Killed: its first step waits for ACCESS EXCLUSIVE behind a reader when the process dies.
        await using (var holder = await LockHolder.HoldAsync(_db, "f_nn", "ACCESS SHARE"))
        await using (var host = FaultHost.Start(Faults.ConnectionString(_db, "f-nn-kill"), "set-not-null", "f_nn", "a"))
        {
            await Faults.WaitForLockWaitAsync(_db, "f-nn-kill", "LOCK TABLE");
            await host.KillAsync();
        }

        await Faults.WaitForNoSessionAsync(_db, "f-nn-kill");
        var engine = Faults.Engine(_db, "f-nn");
        var killed = await LatestMigrationAsync(engine, "f_nn");
        Assert.Equal(MigrationPhase.Expanding, killed.Phase);
        var again = await Assert.ThrowsAsync<ZdtException>(() => engine.ApplyAsync(engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", "f_nn", "a"))));
        Assert.Contains($"Undo-Migration -Id {killed.Id}", again.Message);
        Assert.Equal(MigrationPhase.Undone, (await engine.UndoAsync(killed.Id)).Phase);
        await Faults.AssertSchemaAsync(_db, before);

        // Terminated: the engine sees the failure itself, proves the table unchanged and frees it (Failed).
        Task<Migration> expand;
        await using (var holder = await LockHolder.HoldAsync(_db, "f_nn", "ACCESS SHARE"))
        {
            expand = engine.ApplyAsync(engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", "f_nn", "a")));
            var pid = await Faults.WaitForLockWaitAsync(_db, "f-nn", "LOCK TABLE");
            await Faults.TerminateAsync(_db, pid);
            await Assert.ThrowsAnyAsync<Exception>(() => expand);
        }

        var terminated = await LatestMigrationAsync(engine, "f_nn");
        Assert.Equal(MigrationPhase.Failed, terminated.Phase);
        Assert.Contains("exactly as before", terminated.LastError);
        await Faults.AssertSchemaAsync(_db, before);
        Assert.Equal(MigrationPhase.Expanded, (await engine.ApplyAsync(engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", "f_nn", "a")))).Phase);
    }

    // ---- backfill: killed, resumed --------------------------------------------------------------

    [Fact]
    public async Task Process_killed_during_backfill_leaves_Backfilling_and_the_next_run_resumes_to_parity_and_contract()
    {
        await CreateTableAsync("f_kill_backfill", rows: 20000);
        var engine = Faults.Engine(_db, "f-kill-backfill-engine");
        var migration = await engine.RenameColumnAsync("f_kill_backfill", "a", "b");
        await using (var host = FaultHost.Start(Faults.ConnectionString(_db, "f-kill-backfill"), "backfill", migration.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "500", "100"))
        {
            await Faults.WaitUntilAsync(_db, $"SELECT rows_backfilled >= 1000 FROM zdt.migration WHERE id = {migration.Id}");
            await host.KillAsync();
        }

        await Faults.WaitForNoSessionAsync(_db, "f-kill-backfill");
        var killed = await engine.GetMigrationAsync(migration.Id);
        Assert.Equal(MigrationPhase.Backfilling, killed.Phase);
        Assert.True(killed.RowsBackfilled is > 0 and < 20000, $"{killed.RowsBackfilled} rows backfilled when killed");

        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(migration.Id)).Phase);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM f_kill_backfill WHERE b IS DISTINCT FROM 'v' || id"));
    }

    [Fact]
    public async Task Add_column_killed_during_backfill_resumes_and_one_whose_batch_backend_is_terminated_resumes_too()
    {
        await _db.ExecuteAsync("CREATE TABLE f_addcol (id int PRIMARY KEY, x int); INSERT INTO f_addcol SELECT g, g FROM generate_series(1, 20000) g;");
        var engine = Faults.Engine(_db, "f-addcol-engine");
        var migration = await engine.ApplyAsync(engine.PlanAddColumnAsync(new AddColumnRequest("public", "f_addcol", "token", "uuid", "gen_random_uuid()", NotNull: true)));
        Assert.Equal(MigrationPhase.Expanded, migration.Phase);
        var id = migration.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);

        await using (var host = FaultHost.Start(Faults.ConnectionString(_db, "f-addcol-kill"), "backfill", id, "500", "100"))
        {
            await Faults.WaitUntilAsync(_db, $"SELECT rows_backfilled >= 1000 FROM zdt.migration WHERE id = {migration.Id}");
            await host.KillAsync();
        }

        await Faults.WaitForNoSessionAsync(_db, "f-addcol-kill");
        Assert.Equal(MigrationPhase.Backfilling, (await engine.GetMigrationAsync(migration.Id)).Phase);

        // A terminated batch: the run fails, nothing half-done is committed, the next run resumes.
        var terminating = Faults.Engine(_db, "f-addcol-term");
        var run = terminating.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 500, Delay = TimeSpan.FromMilliseconds(100) });
        await Faults.WaitUntilAsync(_db, $"SELECT rows_backfilled >= 4000 FROM zdt.migration WHERE id = {migration.Id}");
        // Every session of the run but the coordinator (which holds the phase lock): the batch at work, or the pooled one the next batch takes.
        while (!run.IsCompleted)
        {
            await _db.ExecuteAsync("""
                SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a
                WHERE a.application_name = 'f-addcol-term' AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory')
                """);
            await Task.WhenAny(run, Task.Delay(50));
        }

        await Assert.ThrowsAnyAsync<Exception>(() => run);
        Assert.Equal(MigrationPhase.Backfilling, (await engine.GetMigrationAsync(migration.Id)).Phase);

        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(migration.Id)).Phase);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM f_addcol WHERE token IS NULL"));
    }

    [Fact]
    public async Task Add_column_contract_whose_backend_is_terminated_and_an_undo_killed_mid_wait_end_undone_with_the_table_as_before()
    {
        await _db.ExecuteAsync("CREATE TABLE f_addcol_c (id int PRIMARY KEY, x int); INSERT INTO f_addcol_c SELECT g, g FROM generate_series(1, 2000) g;");
        var before = await Faults.SchemaAsync(_db);
        var engine = Faults.Engine(_db, "f-addcol-c");
        var migration = await engine.ApplyAsync(engine.PlanAddColumnAsync(new AddColumnRequest("public", "f_addcol_c", "token", "uuid", "gen_random_uuid()", NotNull: true)));
        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(migration.Id)).Phase);

        // Contract: its first step waits for ACCESS EXCLUSIVE behind a reader and its backend is terminated.
        await using (var reader = await LockHolder.HoldAsync(_db, "f_addcol_c", "ACCESS SHARE"))
        {
            var contract = engine.CompleteAsync(migration.Id);
            var pid = await Faults.WaitForLockWaitAsync(_db, "f-addcol-c", "LOCK TABLE");
            await Faults.TerminateAsync(_db, pid);
            await Assert.ThrowsAnyAsync<Exception>(() => contract);
        }

        var stopped = await engine.GetMigrationAsync(migration.Id);
        Assert.Equal(MigrationPhase.Contracting, stopped.Phase);
        Assert.Contains($"Complete-Contract -Id {migration.Id}", stopped.LastError);

        // Undo, killed (SIGKILL) while it waits for its lock: nothing ran, the migration can still be undone.
        await using (var reader = await LockHolder.HoldAsync(_db, "f_addcol_c", "ACCESS SHARE"))
        await using (var host = FaultHost.Start(Faults.ConnectionString(_db, "f-addcol-undo"), "undo", migration.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            await Faults.WaitForLockWaitAsync(_db, "f-addcol-undo", "LOCK TABLE");
            await host.KillAsync();
        }

        await Faults.WaitForNoSessionAsync(_db, "f-addcol-undo");
        Assert.Equal(MigrationPhase.Undone, (await engine.UndoAsync(migration.Id)).Phase);
        await Faults.AssertSchemaAsync(_db, before);
    }

    // ---- case 9: the phase lock is lost while the phase runs -------------------------------------

    [Fact]
    public async Task A_backfill_whose_phase_lock_session_is_terminated_stops_and_a_second_one_runs_alone_to_the_end()
    {
        await CreateTableAsync("f_lock_lost", rows: 20000);
        var engine = Faults.Engine(_db, "f-lock-first");
        var migration = await engine.RenameColumnAsync("f_lock_lost", "a", "b");
        var first = engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 200, Delay = TimeSpan.FromMilliseconds(100) });
        await Faults.WaitUntilAsync(_db, $"SELECT rows_backfilled >= 400 FROM zdt.migration WHERE id = {migration.Id}");

        var coordinator = await _db.ScalarAsync<int>("SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND a.application_name = 'f-lock-first'");
        await Faults.TerminateAsync(_db, coordinator);

        var lost = await Assert.ThrowsAsync<ZdtException>(() => first);
        Assert.Equal(ErrorIds.PhaseLockLost, lost.ErrorId);
        var stoppedAt = (await engine.GetMigrationAsync(migration.Id)).RowsBackfilled;

        var second = Faults.Engine(_db, "f-lock-second");
        Assert.Equal(MigrationPhase.Backfilled, (await second.BackfillAsync(migration.Id)).Phase);
        Assert.True(stoppedAt < 20000, $"the first run stopped after {stoppedAt} rows");
        Assert.True((await second.TestColumnParityAsync(migration.Id)).InParity);
        Assert.Equal(MigrationPhase.Completed, (await second.CompleteAsync(migration.Id)).Phase);
    }

    [Fact]
    public async Task A_step_whose_phase_lock_is_lost_while_it_waits_for_its_table_lock_stops_at_its_next_attempt()
    {
        // The step's transaction checks the phase lock before it asks for the table's lock: once
        // the lock is lost, the step does not queue in front of the application again (each
        // attempt holds the queue up for lock_timeout) until -LockRetryTimeout; it stops with
        // PhaseLockLost. (Checked after the statements, as before, the swap would retry behind
        // the reader for the whole 60 s and end LockRetryTimeoutExceeded.)
        // No index on the column: the contract's early DROP INDEX CONCURRENTLY would wait for the reader first.
        await _db.ExecuteAsync("CREATE TABLE f_lock_lost_wait (id int PRIMARY KEY, a text); INSERT INTO f_lock_lost_wait SELECT g, 'v' || g FROM generate_series(1, 2000) g;");
        var engine = Faults.Engine(_db, "f-lock-wait", new EngineOptions { LockRetryTimeout = TimeSpan.FromSeconds(60) });
        var migration = await engine.RenameColumnAsync("f_lock_lost_wait", "a", "b");
        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(migration.Id)).Phase);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);

        await using (var reader = await LockHolder.HoldAsync(_db, "f_lock_lost_wait", "ACCESS SHARE"))
        {
            var contract = engine.CompleteAsync(migration.Id);
            await Faults.WaitForLockWaitAsync(_db, "f-lock-wait", "LOCK TABLE");
            var coordinator = await _db.ScalarAsync<int>("SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'f-lock-wait'");
            await Faults.TerminateAsync(_db, coordinator);

            var lost = await Assert.ThrowsAsync<ZdtException>(() => contract);
            Assert.Equal(ErrorIds.PhaseLockLost, lost.ErrorId);
        }

        // What committed before is kept; the same command continues it.
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
        Assert.Equal(0, await _db.ScalarAsync<long>("SELECT count(*) FROM f_lock_lost_wait WHERE b IS NULL"));
    }

    [Fact]
    public async Task A_second_backfill_is_refused_while_the_first_holds_the_phase_lock()
    {
        await CreateTableAsync("f_lock_held", rows: 20000);
        var engine = Faults.Engine(_db, "f-lock-held");
        var migration = await engine.RenameColumnAsync("f_lock_held", "a", "b");
        using var stop = new CancellationTokenSource();
        var first = engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 200, Delay = TimeSpan.FromMilliseconds(100) }, stop.Token);
        await Faults.WaitUntilAsync(_db, $"SELECT rows_backfilled >= 400 FROM zdt.migration WHERE id = {migration.Id}");

        var refused = await Assert.ThrowsAsync<ZdtException>(() => Faults.Engine(_db, "f-lock-held-2").BackfillAsync(migration.Id));
        Assert.Equal(ErrorIds.MigrationPhaseRunning, refused.ErrorId);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
    }

    // ---- case 8: undo after an interrupted contract (and an interrupted undo) ---------------------

    [Fact]
    public async Task Undo_after_a_contract_interrupted_in_DROP_INDEX_CONCURRENTLY_restores_a_valid_index()
    {
        await CreateTableAsync("f_contract_undo");
        var before = await Faults.SchemaAsync(_db);
        var engine = Faults.Engine(_db, "f-contract-undo");
        var migration = await engine.RenameColumnUpToVerifiedAsync("f_contract_undo", "a", "b");

        // A reader keeps DROP INDEX CONCURRENTLY waiting after it has marked the index INVALID; its backend is then terminated.
        await Faults.TerminateWhileWaitingAsync(_db, () => engine.CompleteAsync(migration.Id), "f-contract-undo", "DROP INDEX CONCURRENTLY", readTable: "f_contract_undo");

        Assert.False(await _db.ScalarAsync<bool>("SELECT indisvalid FROM pg_index WHERE indexrelid = 'f_contract_undo_a_idx'::regclass"));
        var interrupted = await engine.GetMigrationAsync(migration.Id);
        Assert.Equal(MigrationPhase.Contracting, interrupted.Phase);
        Assert.Contains($"Complete-Contract -Id {migration.Id}", interrupted.LastError);

        Assert.Equal(MigrationPhase.Undone, (await engine.UndoAsync(migration.Id)).Phase);
        await Faults.AssertSchemaAsync(_db, before);
    }

    [Fact]
    public async Task Process_killed_during_contract_and_an_undo_whose_index_rebuild_is_terminated_still_end_with_valid_indexes()
    {
        await CreateTableAsync("f_kill_contract");
        var before = await Faults.SchemaAsync(_db);
        var engine = Faults.Engine(_db, "f-kill-contract-engine");
        var migration = await engine.RenameColumnUpToVerifiedAsync("f_kill_contract", "a", "b");
        var id = migration.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);

        await using (var reader = await Faults.OpenOldSnapshotAsync(_db, "f_kill_contract"))
        await using (var host = FaultHost.Start(Faults.ConnectionString(_db, "f-kill-contract"), "contract", id))
        {
            var pid = await Faults.WaitForLockWaitAsync(_db, "f-kill-contract", "DROP INDEX CONCURRENTLY");
            await host.KillAsync();
            await Faults.TerminateAsync(_db, pid);
        }

        Assert.Equal(MigrationPhase.Contracting, (await engine.GetMigrationAsync(migration.Id)).Phase);

        // The undo's rebuild of the old index waits for a snapshot and is terminated: the undo fails, Undoing.
        var undoing = Faults.Engine(_db, "f-kill-contract-undo");
        await Faults.TerminateWhileWaitingAsync(_db, () => undoing.UndoAsync(migration.Id), "f-kill-contract-undo", "CREATE INDEX CONCURRENTLY");

        var stopped = await engine.GetMigrationAsync(migration.Id);
        Assert.Equal(MigrationPhase.Undoing, stopped.Phase);
        Assert.Contains($"Undo-Migration -Id {migration.Id}", stopped.LastError);

        Assert.Equal(MigrationPhase.Undone, (await engine.UndoAsync(migration.Id)).Phase);
        await Faults.AssertSchemaAsync(_db, before);
    }

    // ---- type change with -Cascade: the process killed in its expand and in its contract ---------

    /// <summary>An integer primary key referenced by a child's foreign key (and an index on it), with rows in both.</summary>
    private async Task CreateParentAndChildAsync(string name)
    {
        await _db.ExecuteAsync($"""
            CREATE TABLE {name} (id integer PRIMARY KEY, v text);
            CREATE TABLE {name}_child (id serial PRIMARY KEY, parent_id integer NOT NULL REFERENCES {name} (id));
            CREATE INDEX {name}_child_parent ON {name}_child (parent_id);
            INSERT INTO {name} SELECT g, 'v' || g FROM generate_series(1, 2000) g;
            INSERT INTO {name}_child (parent_id) SELECT g FROM generate_series(1, 2000, 2) g;
            """);
    }

    [Fact]
    public async Task Type_change_killed_during_its_expand_leaves_Expanding_and_undo_restores_both_tables()
    {
        await CreateParentAndChildAsync("f_tc_expand");
        var before = await Faults.SchemaAsync(_db);
        await using (var snapshot = await Faults.OpenOldSnapshotAsync(_db))
        await using (var host = FaultHost.Start(Faults.ConnectionString(_db, "f-tc-expand"), "expand-type", "f_tc_expand", "id", "bigint", "true"))
        {
            await Faults.WaitForLockWaitAsync(_db, "f-tc-expand", "CREATE UNIQUE INDEX CONCURRENTLY");
            await host.KillAsync();
        }

        await Faults.WaitForNoSessionAsync(_db, "f-tc-expand");
        var engine = Faults.Engine(_db, "f-tc-expand-after");
        var migration = await LatestMigrationAsync(engine, "f_tc_expand");
        Assert.Equal(MigrationPhase.Expanding, migration.Phase);

        // The referencing table is held as well: a migration on it is refused, naming this one.
        var held = await Assert.ThrowsAsync<ZdtException>(async () => await engine.RunAsync(await engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest("public", "f_tc_expand_child", "parent_id", "bigint"))));
        Assert.Equal(ErrorIds.MigrationAlreadyActive, held.ErrorId);

        Assert.Equal(MigrationPhase.Undone, (await engine.UndoAsync(migration.Id)).Phase);
        await Faults.AssertSchemaAsync(_db, before);
        Assert.Equal(2000L, await _db.ScalarAsync<long>("SELECT count(*) FROM f_tc_expand"));
        Assert.Equal(1000L, await _db.ScalarAsync<long>("SELECT count(*) FROM f_tc_expand_child"));
    }

    [Fact]
    public async Task Type_change_killed_while_its_contract_waits_for_the_referencing_table_resumes_to_the_end_with_nothing_lost()
    {
        await CreateParentAndChildAsync("f_tc_contract");
        var engine = Faults.Engine(_db, "f-tc-contract-engine");
        var migration = await engine.RunAsync(await engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest("public", "f_tc_contract", "id", "bigint") { Cascade = true }));
        await _db.ExecuteAsync("INSERT INTO f_tc_contract VALUES (5000, 'during'); INSERT INTO f_tc_contract_child (parent_id) VALUES (5000)");
        await engine.BackfillAsync(migration.Id);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        var id = migration.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);

        // A reader of the referencing table: the preparation runs, the swap waits for its lock there and the process is killed.
        await using (var reader = await Faults.OpenOldSnapshotAsync(_db, "f_tc_contract_child"))
        await using (var host = FaultHost.Start(Faults.ConnectionString(_db, "f-tc-contract"), "contract", id))
        {
            await Faults.WaitForLockWaitAsync(_db, "f-tc-contract", "LOCK TABLE");
            await host.KillAsync();
        }

        await Faults.WaitForNoSessionAsync(_db, "f-tc-contract");
        Assert.Equal(MigrationPhase.Contracting, (await engine.GetMigrationAsync(migration.Id)).Phase);
        Assert.Equal("integer", await _db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'f_tc_contract_child'::regclass AND attname = 'parent_id'"));

        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
        Assert.Equal("bigint bigint", await _db.ScalarAsync<string>("SELECT string_agg(format_type(atttypid, atttypmod), ' ' ORDER BY attrelid) FROM pg_attribute WHERE attrelid IN ('f_tc_contract'::regclass, 'f_tc_contract_child'::regclass) AND attname IN ('id', 'parent_id') AND (attrelid = 'f_tc_contract'::regclass) = (attname = 'id')"));
        Assert.Equal(2001L, await _db.ScalarAsync<long>("SELECT count(*) FROM f_tc_contract"));
        Assert.Equal(2000L * 2001 / 2 + 5000, await _db.ScalarAsync<long>("SELECT sum(id)::bigint FROM f_tc_contract"));
        Assert.Equal(1001L, await _db.ScalarAsync<long>("SELECT count(*) FROM f_tc_contract_child c JOIN f_tc_contract p ON p.id = c.parent_id"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_attribute WHERE attrelid IN ('f_tc_contract'::regclass, 'f_tc_contract_child'::regclass) AND attname LIKE 'zdt%' AND NOT attisdropped"));
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_constraint WHERE conrelid = 'f_tc_contract_child'::regclass AND conname = 'f_tc_contract_child_parent_id_fkey' AND convalidated"));
    }

    // ---- case 13: statement_timeout of the database or role -------------------------------------

    [Fact]
    public async Task Long_steps_of_every_phase_run_to_their_end_under_a_role_statement_timeout()
    {
        var role = "zdt_short_timeout";
        await _db.ExecuteAsync($"""
            DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{Faults.RolePassword}'; END IF; END $$;
            ALTER ROLE {role} SET statement_timeout = '300ms';
            CREATE FUNCTION slow_ok(text) RETURNS boolean IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.002); RETURN true; END $$;
            CREATE FUNCTION slow_uuid() RETURNS uuid VOLATILE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.002); RETURN gen_random_uuid(); END $$;
            CREATE TABLE f_timeout (id int PRIMARY KEY, a text CHECK (slow_ok(a)), x int);
            INSERT INTO f_timeout SELECT g, 'v' || g, g FROM generate_series(1, 600) g;
            CREATE INDEX f_timeout_a_idx ON f_timeout (a);
            """);
        try
        {
            var engine = Faults.Engine(_db, "f-timeout", user: role);

            // Expand: the index copy waits ~1.5 s for an old snapshot (longer than the 300 ms timeout).
            Migration migration;
            await using (var snapshot = await Faults.OpenOldSnapshotAsync(_db))
            {
                var expand = engine.RenameColumnAsync("f_timeout", "a", "b");
                await Faults.WaitForLockWaitAsync(_db, "f-timeout", "CREATE INDEX CONCURRENTLY");
                await Task.Delay(1500);
                await snapshot.CloseAsync();
                migration = await expand;
            }

            // Backfill: batches of 300 rows each check slow_ok (~0.6 s per batch).
            Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 300 })).Phase);
            Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);

            // Contract: VALIDATE of the copied check calls slow_ok for every row (~1.2 s).
            Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);

            // Add-Column with a slow volatile default: backfill batches of 300 rows (~0.6 s each), then VALIDATE NOT NULL.
            var added = await engine.ApplyAsync(engine.PlanAddColumnAsync(new AddColumnRequest("public", "f_timeout", "token", "uuid", "slow_uuid()", NotNull: true)));
            Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(added.Id, new BackfillOptions { BatchSize = 300 })).Phase);
            Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(added.Id)).Phase);
            Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM f_timeout WHERE token IS NULL OR b IS NULL"));
        }
        finally
        {
            await _db.ExecuteAsync($"ALTER ROLE {role} RESET statement_timeout");
        }
    }

    [Fact]
    public async Task A_statement_timeout_shorter_than_the_lock_timeout_ends_lock_waits_which_are_retried_like_lock_timeouts()
    {
        var role = "zdt_tiny_timeout";
        await _db.ExecuteAsync($"""
            DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{Faults.RolePassword}'; END IF; END $$;
            ALTER ROLE {role} SET statement_timeout = '40ms';
            CREATE TABLE f_tiny (id int PRIMARY KEY, a text);
            INSERT INTO f_tiny SELECT g, 'v' || g FROM generate_series(1, 100) g;
            """);
        try
        {
            var engine = Faults.Engine(_db, "f-tiny", user: role);
            await using var reader = await LockHolder.HoldAsync(_db, "f_tiny", "ACCESS SHARE");
            var release = reader.ReleaseAfterAsync(TimeSpan.FromMilliseconds(800));
            var migration = await engine.ApplyAsync(engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", "f_tiny", "a")));
            await release;
            Assert.Equal(MigrationPhase.Expanded, migration.Phase);
            Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
        }
        finally
        {
            await _db.ExecuteAsync($"ALTER ROLE {role} RESET statement_timeout");
        }
    }

    [Fact]
    public async Task The_script_shows_which_steps_lift_statement_timeout()
    {
        await CreateTableAsync("f_script");
        var plan = await Engines.For(_db).PlanColumnRenameAsync(new ColumnRenameRequest("public", "f_script", "a", "b"));
        var script = plan.ToScript(TimeSpan.FromMilliseconds(100));
        Assert.Contains("SET statement_timeout = 0;", script, StringComparison.Ordinal);
        Assert.Contains("CREATE INDEX CONCURRENTLY", script, StringComparison.Ordinal);
        // The ACCESS EXCLUSIVE step keeps the server's statement_timeout.
        Assert.DoesNotContain("BEGIN;\nSET LOCAL statement_timeout", script, StringComparison.Ordinal);
    }

    // ---- case 15: the ledger is never a target --------------------------------------------------

    [Fact]
    public async Task The_ledgers_own_tables_are_refused_as_targets_of_every_operation_before_anything_changes()
    {
        var engine = Engines.For(_db);
        await CreateTableAsync("f_ledger_seed", rows: 10);
        await engine.RenameColumnAsync("f_ledger_seed", "a", "b");
        var before = await _db.ScalarAsync<string>("SELECT string_agg(format('%s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY 1) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 WHERE c.relnamespace = 'zdt'::regnamespace");
        var ledgerRows = await _db.ScalarAsync<long>("SELECT count(*) FROM zdt.migration");

        var attempts = new Func<Task<PhasePlan>>[]
        {
            () => engine.PlanColumnRenameAsync(new ColumnRenameRequest("zdt", "migration", "last_error", "error_text")),
            () => engine.PlanColumnRenameAsync(new ColumnRenameRequest("zdt", "migration", "last_error", "error_text") { Strategy = RenameStrategy.View }),
            () => engine.PlanTableRenameAsync(new TableRenameRequest("zdt", "migration", "migrations")),
            () => engine.PlanAddColumnAsync(new AddColumnRequest("zdt", "migration", "extra", "int")),
            () => engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("zdt", "migration", "last_error")),
            () => engine.PlanCreateIndexAsync(new CreateIndexRequest("zdt", "migration_event") { Columns = new[] { "at" } }),
            () => engine.PlanDropIndexAsync(new DropIndexRequest("zdt", "migration_event_by_migration")),
            () => engine.PlanSafeDdlAsync(new SafeDdlRequest("ALTER TABLE zdt.migration ADD COLUMN extra int")),
            () => engine.PlanAddConstraintAsync(new AddConstraintRequest("zdt", "migration", ConstraintKind.Check) { Check = "rows_backfilled >= 0" }),
        };
        foreach (var attempt in attempts)
        {
            var error = await Assert.ThrowsAsync<ZdtException>(attempt);
            Assert.Equal(ErrorIds.LedgerNotATarget, error.ErrorId);
        }

        Assert.Equal(before, await _db.ScalarAsync<string>("SELECT string_agg(format('%s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY 1) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 WHERE c.relnamespace = 'zdt'::regnamespace"));
        Assert.Equal(ledgerRows, await _db.ScalarAsync<long>("SELECT count(*) FROM zdt.migration"));
    }

    // ---- case 17: privileges, parity advice, duplicate keys --------------------------------------

    [Fact]
    public async Task A_role_that_does_not_own_the_table_is_refused_at_planning_naming_the_owner_and_nothing_is_left()
    {
        // Checked before anything is created (ledger included), so the role needs no rights on the
        // ledger: granting it writes there would make every later user refuse the ledger (LedgerTrust).
        await CreateTableAsync("f_priv");
        var before = await Faults.SchemaAsync(_db);
        await _db.ExecuteAsync($"""
            DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zdt_not_owner') THEN CREATE ROLE zdt_not_owner LOGIN PASSWORD '{Faults.RolePassword}'; END IF; END $$;
            GRANT SELECT, UPDATE ON f_priv TO zdt_not_owner;
            """);
        var owner = await _db.ScalarAsync<string>("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'f_priv'::regclass");
        var engine = Faults.Engine(_db, "f-priv", user: "zdt_not_owner");

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RenameColumnAsync("f_priv", "a", "b"));
        Assert.Equal(ErrorIds.NotTableOwner, error.ErrorId);
        Assert.Equal(ErrorKind.PermissionDenied, error.Kind);
        Assert.Contains(owner!, error.Message);
        Assert.Contains("zdt_not_owner", error.Message);
        Assert.Contains("GRANT", error.Message);
        await Faults.AssertSchemaAsync(_db, before);
    }

    [Fact]
    public async Task After_ParityFailed_at_contract_the_advised_Invoke_Backfill_runs_and_the_contract_then_completes()
    {
        await CreateTableAsync("f_parity");
        var engine = Engines.For(_db);
        var migration = await engine.RenameColumnUpToVerifiedAsync("f_parity", "a", "b");
        // A writer the trigger does not see (session_replication_role = replica) makes the columns drift.
        await _db.ExecuteAsync("SET session_replication_role = replica; UPDATE f_parity SET a = 'drifted' WHERE id <= 3; RESET session_replication_role;");

        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.CompleteAsync(migration.Id));
        Assert.Equal(ErrorIds.ParityFailed, refused.ErrorId);
        Assert.Contains("Invoke-Backfill", refused.Message);
        Assert.Equal(MigrationPhase.Backfilled, (await engine.GetMigrationAsync(migration.Id)).Phase);

        Assert.Equal(MigrationPhase.Backfilled, (await engine.BackfillAsync(migration.Id)).Phase);
        Assert.True((await engine.TestColumnParityAsync(migration.Id)).InParity);
        Assert.Equal(MigrationPhase.Completed, (await engine.CompleteAsync(migration.Id)).Phase);
        Assert.Equal("drifted", await _db.ScalarAsync<string>("SELECT b FROM f_parity WHERE id = 1"));
    }

    [Fact]
    public async Task Duplicate_keys_are_named_from_the_data_not_from_the_redacted_server_detail()
    {
        await _db.ExecuteAsync("CREATE TABLE f_dup (id int PRIMARY KEY, code text); INSERT INTO f_dup SELECT g, 'c' || (g % 50) FROM generate_series(1, 200) g; INSERT INTO f_dup VALUES (1000, 'c7'), (1001, 'c7');");
        var engine = Engines.For(_db);
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.ApplyAsync(engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "f_dup") { Columns = new[] { "code" }, Unique = true })));
        Assert.Equal("DuplicateKeys", error.ErrorId);
        Assert.DoesNotContain("redacted", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("(\"code\") = (c7), in 6 rows", error.Message, StringComparison.Ordinal);
    }
}
