using System.Diagnostics;
using Npgsql;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Support;

/// <summary>
/// A stand-in for the application: a few sessions that insert and update rows of a table in a
/// loop (autocommit, like most OLTP traffic), timing every statement. A statement that waits on a
/// lock shows up as a long latency; one that fails is recorded as an error. Each statement also
/// reports, with RETURNING, how long its (autocommit) transaction had been running on the server
/// when it got its row (clock_timestamp() - transaction_timestamp(): the transaction starts with
/// the first protocol message, before the table lock is taken in parse analysis): its lock waits
/// without the noise of a busy test machine's client-side scheduling, which is what the
/// lock-safety bounds are asserted on.
/// </summary>
public sealed class Workload : BackgroundSessions
{
    private long _maxTicks;
    private long _maxServerTicks;

    private Workload()
    {
    }

    /// <summary>The longest any one statement took, seen from the client.</summary>
    public TimeSpan MaxLatency => TimeSpan.FromTicks(Interlocked.Read(ref _maxTicks));

    /// <summary>The longest any one statement took on the server, lock waits included.</summary>
    public TimeSpan MaxServerLatency => TimeSpan.FromTicks(Interlocked.Read(ref _maxServerTicks));

    /// <summary>
    /// Starts <paramref name="sessions"/> writers on <paramref name="table"/> (a table of the shape
    /// Tables.CreateOrdersAsync makes). Inserts use customer ids 1..<paramref name="customers"/>;
    /// updates touch the first <paramref name="rows"/> ids.
    /// </summary>
    public static async Task<Workload> StartAsync(TestDatabase db, string table, int rows, int sessions = 3, int customers = 10)
    {
        var workload = new Workload();
        var started = new CountdownEvent(sessions);
        workload.Run(Enumerable.Range(0, sessions).Select(seed => (Func<Task>)(() => workload.RunSessionAsync(db, table, rows, customers, seed, started))).ToArray());

        // Every session has run at least one statement: the workload is really on.
        await Task.Run(() => started.Wait(TimeSpan.FromSeconds(10)));
        return workload;
    }

    private async Task RunSessionAsync(TestDatabase db, string table, int rows, int customers, int seed, CountdownEvent started)
    {
        var random = new Random(seed);
        await using var connection = await db.OpenAsync();
        var first = true;
        while (!Stopping.IsCancellationRequested)
        {
            var insert = random.Next(2) == 0;
            const string elapsed = "RETURNING extract(epoch FROM clock_timestamp() - transaction_timestamp())::float8";
            await using var cmd = insert
                ? new NpgsqlCommand($"INSERT INTO {table} (customer_id, qty) VALUES ($1, 1) {elapsed}", connection)
                : new NpgsqlCommand($"UPDATE {table} SET qty = qty + 1 WHERE id = $1 {elapsed}", connection);
            cmd.Parameters.AddWithValue(insert ? random.Next(1, customers + 1) : (long)random.Next(1, rows + 1));
            var watch = Stopwatch.StartNew();
            try
            {
                if (await cmd.ExecuteScalarAsync() is double seconds)
                {
                    RaiseMax(ref _maxServerTicks, TimeSpan.FromSeconds(seconds).Ticks);
                }

                Succeeded();
            }
            catch (PostgresException e)
            {
                Failed(e.MessageText);
            }

            RaiseMax(ref _maxTicks, watch.Elapsed.Ticks);

            if (first)
            {
                started.Signal();
                first = false;
            }

            await Task.Delay(2);
        }
    }

    private static void RaiseMax(ref long max, long ticks)
    {
        long seen;
        while (ticks > (seen = Interlocked.Read(ref max)) && Interlocked.CompareExchange(ref max, ticks, seen) != seen)
        {
        }
    }
}

/// <summary>A session holding a table lock in an open transaction, as a long report query or a slow batch job would.</summary>
public sealed class LockHolder : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private Task? _release;

    private LockHolder(NpgsqlConnection connection, int pid)
    {
        _connection = connection;
        Pid = pid;
    }

    public int Pid { get; }

    /// <summary>Takes <paramref name="mode"/> (e.g. "ACCESS SHARE", "ROW EXCLUSIVE") on the table and keeps it until released.</summary>
    public static async Task<LockHolder> HoldAsync(TestDatabase db, string table, string mode)
    {
        var connection = await db.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"BEGIN; LOCK TABLE {table} IN {mode} MODE;", connection))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        await using var pid = new NpgsqlCommand("SELECT pg_backend_pid()", connection);
        return new LockHolder(connection, (int)(await pid.ExecuteScalarAsync())!);
    }

    /// <summary>Ends the transaction after <paramref name="delay"/>, in the background.</summary>
    public Task ReleaseAfterAsync(TimeSpan delay) => Task.Run(async () =>
    {
        await Task.Delay(delay);
        await ReleaseAsync();
    });

    /// <summary>Ends the transaction (once, however often it is called).</summary>
    public Task ReleaseAsync()
    {
        lock (_connection)
        {
            return _release ??= ReleaseCoreAsync();
        }
    }

    public async ValueTask DisposeAsync() => await ReleaseAsync();

    private async Task ReleaseCoreAsync()
    {
        await using (var cmd = new NpgsqlCommand("COMMIT", _connection))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        await _connection.DisposeAsync();
    }
}
