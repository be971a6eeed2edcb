using System.Diagnostics;
using Npgsql;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Execution;

/// <summary>
/// When a step's COMMIT really gives its table locks back. PostgreSQL releases a transaction's
/// locks at COMMIT before it removes the files of the relations the transaction dropped
/// (CommitTransaction: the locks, then smgrDoPendingDeletes), and removing a file takes time in
/// proportion to its size: the contract of a type change drops the old primary key's index, and
/// its COMMIT returned 120 ms (1M rows) to 800 ms (10M rows) after the application was let in
/// (issue 14). So the time the locks were held is taken as the application sees it: a second
/// session, opened before the lock is taken, watches pg_locks for the step's relation locks while
/// COMMIT runs. It only reads pg_locks: it queues for no lock and blocks no one.
/// </summary>
internal sealed class LockReleaseWatch : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;

    private LockReleaseWatch(NpgsqlConnection connection)
    {
        _connection = connection;
    }

    /// <summary>The watch's own session, or null when none can be opened (the hold is then measured to the COMMIT's return, as before).</summary>
    public static async Task<LockReleaseWatch?> OpenAsync(ConnectionTarget target, CancellationToken ct)
    {
        try
        {
            return new LockReleaseWatch(await target.OpenAsync(ct).ConfigureAwait(false));
        }
        catch (Exception e) when (e is NpgsqlException or ZdtException)
        {
            return null;
        }
    }

    /// <summary>
    /// Commits <paramref name="tx"/> (the session <paramref name="pid"/>) and returns how long, on
    /// <paramref name="held"/>, its relation locks were held: until the first look at pg_locks that
    /// no longer finds them, or until the COMMIT returned if that came first. A failed COMMIT throws as before.
    /// </summary>
    public async Task<(TimeSpan Held, TimeSpan CommitReturned)> CommitAsync(NpgsqlTransaction tx, int pid, Stopwatch held, CancellationToken ct)
    {
        var commit = tx.CommitAsync(ct);
        TimeSpan? released = null;
        try
        {
            await using var look = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE pid = $1 AND locktype = 'relation' AND granted)", _connection);
            look.Parameters.Add(new NpgsqlParameter { Value = pid });
            while (!commit.IsCompleted)
            {
                if (await look.ExecuteScalarAsync(ct).ConfigureAwait(false) is false)
                {
                    released = held.Elapsed;
                    break;
                }
            }
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException)
        {
            // The watch is only a measurement: the COMMIT's own outcome is what counts.
        }

        await commit.ConfigureAwait(false);
        var returned = held.Elapsed;
        return (released is { } r && r < returned ? r : returned, returned);
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
