using System.Diagnostics;
using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Support;

/// <summary>
/// A phase run in a child process (tests/ZeroDowntime.FaultHost) that a test can kill with SIGKILL
/// in the middle, as an operator's pwsh killed by the OOM killer or kill -9 would be.
/// </summary>
public sealed class FaultHost : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Task<string> _output;

    private FaultHost(Process process)
    {
        _process = process;
        _output = process.StandardOutput.ReadToEndAsync();
    }

    /// <summary>Starts the host on <paramref name="connectionString"/> with a verb and its arguments (see its Program.cs).</summary>
    public static FaultHost Start(string connectionString, params string[] arguments)
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = testOutput.Name;
        var configuration = testOutput.Parent!.Name;
        var host = Path.GetFullPath(Path.Combine(testOutput.FullName, "..", "..", "..", "..", "ZeroDowntime.FaultHost", "bin", configuration, framework, "ZeroDowntime.FaultHost.dll"));
        Assert.True(File.Exists(host), $"The fault host is built with the tests; not found at {host}.");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(host);
        start.ArgumentList.Add(connectionString);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return new FaultHost(Process.Start(start)!);
    }

    /// <summary>SIGKILL: the process gets no chance to clean up or to tell the server anything.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>Waits for the host to end by itself and returns what it printed.</summary>
    public async Task<string> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return await _output;
    }

    public bool HasExited => _process.HasExited;

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await KillAsync();
        }

        _process.Dispose();
    }
}

/// <summary>Helpers of the fault-path tests: engines with their own application name, backends, snapshots.</summary>
public static class Faults
{
    /// <summary>
    /// The test database's connection string with its own application_name: its sessions can be
    /// found in pg_stat_activity, and it gets a pool of its own (fresh sessions).
    /// </summary>
    public static string ConnectionString(TestDatabase db, string application, string? user = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(db.ConnectionString) { ApplicationName = application };
        if (user is not null)
        {
            builder.Username = user;
            builder.Password = RolePassword;
        }

        return builder.ConnectionString;
    }

    /// <summary>The password of the roles the tests create (CREATE ROLE ... PASSWORD), for TCP connections.</summary>
    public const string RolePassword = "fault-path-test";

    public static MigrationEngine Engine(TestDatabase db, string application, EngineOptions? options = null, string? user = null)
        => new(ConnectionTarget.Resolve(ConnectionString(db, application, user)), options ?? Engines.Fast);

    /// <summary>Waits until a session of <paramref name="application"/> runs a statement starting with <paramref name="queryPrefix"/> and waits for a lock; returns its pid.</summary>
    public static async Task<int> WaitForLockWaitAsync(TestDatabase db, string application, string queryPrefix, TimeSpan? timeout = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < until)
        {
            var pid = await db.ScalarAsync<int?>($"""
                SELECT pid FROM pg_stat_activity
                WHERE application_name = '{application}' AND query LIKE '{queryPrefix}%' AND wait_event_type = 'Lock' AND state = 'active'
                LIMIT 1
                """);
            if (pid is { } found)
            {
                return found;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"No session of {application} waited on a lock in '{queryPrefix}...'.");
    }

    /// <summary>
    /// Runs <paramref name="phase"/> while an old snapshot (with <paramref name="readTable"/>: a reader
    /// of that table) keeps its CONCURRENTLY statement starting with <paramref name="queryPrefix"/>
    /// waiting, terminates that statement's backend, and asserts the phase fails.
    /// </summary>
    public static async Task TerminateWhileWaitingAsync(TestDatabase db, Func<Task> phase, string application, string queryPrefix, string? readTable = null)
    {
        await using var snapshot = await OpenOldSnapshotAsync(db, readTable);
        var run = phase();
        var pid = await WaitForLockWaitAsync(db, application, queryPrefix);
        await TerminateAsync(db, pid);
        await Assert.ThrowsAnyAsync<Exception>(() => run);
    }

    /// <summary>Waits until <paramref name="sql"/> (a boolean query) is true.</summary>
    public static async Task WaitUntilAsync(TestDatabase db, string sql, TimeSpan? timeout = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (!await db.ScalarAsync<bool>(sql))
        {
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"Still false: {sql}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Terminates a backend and waits until it is gone (pg_terminate_backend's own wait needs PostgreSQL 14).</summary>
    public static async Task TerminateAsync(TestDatabase db, int pid)
    {
        Assert.True(await db.ScalarAsync<bool>($"SELECT pg_terminate_backend({pid})"), $"pid {pid} was not terminated");
        await WaitUntilAsync(db, $"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = {pid})");
    }

    /// <summary>Waits until no session of <paramref name="application"/> is left on the server (a killed client's backend may finish its statement first).</summary>
    public static Task WaitForNoSessionAsync(TestDatabase db, string application)
        => WaitUntilAsync(db, $"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = '{application}' AND state <> 'idle')");

    /// <summary>
    /// A transaction that keeps a snapshot (and, with <paramref name="table"/>, an ACCESS SHARE lock)
    /// until disposed: what makes CREATE/DROP INDEX CONCURRENTLY wait.
    /// </summary>
    public static async Task<NpgsqlConnection> OpenOldSnapshotAsync(TestDatabase db, string? table = null)
    {
        var connection = await db.OpenAsync();
        await using var cmd = new NpgsqlCommand($"BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT {(table is null ? "1" : $"count(*) FROM {table}")};", connection);
        await cmd.ExecuteNonQueryAsync();
        return connection;
    }

    /// <summary>The public schema (Tables.SnapshotAsync) and the ledger schema's functions: what a fully undone migration leaves.</summary>
    public static async Task<string> SchemaAsync(TestDatabase db)
        => await Tables.SnapshotAsync(db) + "\nfunctions: " + await db.ScalarAsync<string>("SELECT COALESCE(string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1), '') FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'zdt'");

    /// <summary>
    /// Asserts the schema is as <paramref name="before"/> (as sets of objects: the snapshot's lists
    /// follow catalog order, which a rebuilt index changes), naming what is missing and extra.
    /// </summary>
    public static async Task AssertSchemaAsync(TestDatabase db, string before)
    {
        static List<string> Items(string s) => s.Split(new[] { ", ", "\n" }, StringSplitOptions.None).Order(StringComparer.Ordinal).ToList();
        var now = await SchemaAsync(db);
        var (was, @is) = (Items(before), Items(now));
        if (!was.SequenceEqual(@is))
        {
            Assert.Fail($"The schema differs from before. Missing: {string.Join(" | ", was.Except(@is))}. Extra: {string.Join(" | ", @is.Except(was))}.");
        }
    }
}
