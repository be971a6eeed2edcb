using System.Diagnostics;
using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Execution;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// DDL must never cause a lock-queue outage: while a long transaction holds a lock on the table,
/// our ACCESS EXCLUSIVE request may only make other sessions wait up to the lock timeout.
/// </summary>
public class LockSafetyTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public LockSafetyTests(TestDatabase db)
    {
        _db = db;
    }

    private async Task<(NpgsqlConnection Blocker, int Pid)> HoldShareLockAsync(string table)
    {
        var blocker = await _db.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"BEGIN; SELECT count(*) FROM {table};", blocker))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        await using var pidCmd = new NpgsqlCommand("SELECT pg_backend_pid()", blocker);
        return (blocker, (int)(await pidCmd.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task The_rename_retries_behind_a_blocker_without_stalling_other_sessions_and_succeeds_when_it_ends()
    {
        await _db.ExecuteAsync("CREATE TABLE busy (id int PRIMARY KEY, v text); INSERT INTO busy SELECT g, 'x' FROM generate_series(1, 1000) g;");
        var (blocker, blockerPid) = await HoldShareLockAsync("busy");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var rename = Task.Run(() => engine.RenameTableAsync("busy", "busy2"));

        // While the blocker holds on, other sessions keep reading the table. Without lock_timeout
        // they would queue behind our ACCESS EXCLUSIVE request until the blocker ends (4 s here).
        // Each of the engine's attempts still makes them wait up to the 100 ms lock timeout, so the
        // window is long enough for the read count below to be far from its floor on a busy machine.
        var longest = TimeSpan.Zero;
        var reads = 0;
        var watch = Stopwatch.StartNew();
        await using (var reader = await _db.OpenAsync())
        {
            while (watch.Elapsed < TimeSpan.FromSeconds(4))
            {
                var one = Stopwatch.StartNew();
                await using var cmd = new NpgsqlCommand("SELECT count(*) FROM busy", reader);
                await cmd.ExecuteScalarAsync();
                longest = one.Elapsed > longest ? one.Elapsed : longest;
                reads++;
                await Task.Delay(10);
            }
        }

        Assert.False(rename.IsCompleted, "the rename cannot finish while the blocker holds its lock");
        await using (var commit = new NpgsqlCommand("COMMIT", blocker))
        {
            await commit.ExecuteNonQueryAsync();
        }

        await blocker.DisposeAsync();
        var migration = await rename.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(MigrationPhase.Expanded, migration.Phase);
        Assert.True(reads > 20, $"only {reads} reads got through");

        // The bound is the 100 ms lock_timeout; the margin absorbs a noisy 2-core machine but is far
        // below the 4 s the readers would have queued without it.
        Assert.True(longest < TimeSpan.FromMilliseconds(1000), $"a reader waited {longest.TotalMilliseconds:0} ms");
        Assert.Contains($"pid {blockerPid}", observer.AllText, StringComparison.Ordinal);
        Assert.Contains("Retrying in", observer.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_a_short_retry_cap_it_gives_up_naming_the_blocker_and_changes_nothing()
    {
        await _db.ExecuteAsync("CREATE TABLE stuck (id int PRIMARY KEY);");
        var (blocker, blockerPid) = await HoldShareLockAsync("stuck");
        var engine = Engines.For(_db, options: Engines.Fast with { LockRetryTimeout = TimeSpan.FromSeconds(1) });

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RenameTableAsync("stuck", "stuck2"));
        await blocker.DisposeAsync();

        Assert.Equal("LockRetryTimeoutExceeded", error.ErrorId);
        Assert.Equal(ErrorKind.ResourceBusy, error.Kind);
        Assert.Contains($"pid {blockerPid}", error.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", error.Message, StringComparison.Ordinal);
        var blockers = Assert.IsAssignableFrom<IReadOnlyList<BlockingSession>>(error.TargetObject);
        Assert.Contains(blockers, b => b.Pid == blockerPid && b.State == "idle in transaction");

        Assert.Equal("r", await _db.ScalarAsync<string>("SELECT relkind::text FROM pg_class WHERE relname = 'stuck'"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'stuck2'"));
        var recorded = Assert.Single(await engine.GetMigrationsAsync(new MigrationQuery { Table = "stuck" }));
        Assert.Equal(MigrationPhase.Failed, recorded.Phase);
        Assert.Contains("LockRetryTimeout", recorded.LastError ?? "", StringComparison.OrdinalIgnoreCase);

        // Failed is not active: once the blocker is gone the same rename goes through.
        var retried = await engine.RenameTableAsync("stuck", "stuck2");
        Assert.Equal(MigrationPhase.Expanded, retried.Phase);
    }

    [Fact]
    public async Task Two_phases_of_one_table_never_run_at_once()
    {
        await _db.ExecuteAsync("CREATE TABLE contended (id int PRIMARY KEY);");
        var engine = Engines.For(_db);
        var migration = await engine.RenameTableAsync("contended", "contended2");

        // Simulate a phase in progress in another process by holding the per-table advisory lock.
        var tableOid = await _db.ScalarAsync<long>("SELECT 'contended2'::regclass::oid::bigint");
        await using var other = await _db.OpenAsync();
        await using (var cmd = new NpgsqlCommand("SELECT pg_advisory_lock($1)", other))
        {
            cmd.Parameters.AddWithValue(0x5A44_5400_0000_0000L | tableOid);
            await cmd.ExecuteScalarAsync();
        }

        var plan = await engine.PlanContractAsync(migration.Id);
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RunAsync(plan));
        Assert.Equal("MigrationPhaseRunning", error.ErrorId);
        Assert.Equal("v", await _db.ScalarAsync<string>("SELECT relkind::text FROM pg_class WHERE relname = 'contended'"));
    }

    /// <summary>
    /// The hold an ACCESS EXCLUSIVE step reports is measured to the moment its locks are released
    /// (LockReleaseWatch), not to COMMIT sent: work the COMMIT does while it still holds them, here
    /// a deferred constraint trigger that sleeps 300 ms, is part of it. (The other side, a COMMIT
    /// that returns long after it released the locks because it removes a dropped index's files,
    /// is measured by the type change bench: its duration depends on the file system.)
    /// </summary>
    [Fact]
    public async Task The_hold_of_an_access_exclusive_step_includes_the_commit_until_its_locks_are_released()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE slow_commit (id int);
            CREATE FUNCTION slow_commit_check() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow_commit_check AFTER INSERT ON slow_commit DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit_check();
            """);
        var executor = new LockSafeExecutor(ConnectionTarget.Resolve(_db.ConnectionString), Engines.Fast, new RecordingObserver());
        var step = new DdlStep("Insert a row checked at COMMIT", new[] { "INSERT INTO public.slow_commit VALUES (1)" }, LockLevel.AccessExclusive, "public.slow_commit", "test");

        var result = await executor.RunAsync(step, null, CancellationToken.None);

        Assert.True(result.LockHeldFor >= TimeSpan.FromMilliseconds(300), $"reported hold {result.LockHeldFor.TotalMilliseconds:0.0} ms");
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM slow_commit"));
    }
}
