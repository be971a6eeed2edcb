using Npgsql;

namespace ZeroDowntime.Bench.Workload;

/// <summary>
/// A long transaction holding a table lock (a report query, a forgotten psql session, a pg_dump):
/// the classic cause of lock-queue outages, injected on purpose. <see cref="AcquireAsync"/> returns
/// once the lock is granted; the transaction ends by itself after the hold time.
/// </summary>
public sealed class LockHolder : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;
    private readonly CancellationTokenSource _release = new();
    private readonly Task _released;

    private LockHolder(NpgsqlConnection connection, NpgsqlTransaction transaction, TimeSpan holdFor)
    {
        _connection = connection;
        _transaction = transaction;
        _released = ReleaseAfterAsync(holdFor);
    }

    /// <summary>Completes when the transaction has ended and the lock is gone.</summary>
    public Task Released => _released;

    /// <summary>
    /// Opens a transaction that takes <paramref name="mode"/> (e.g. "ACCESS SHARE", what any SELECT
    /// takes) on <paramref name="table"/> and keeps it for <paramref name="holdFor"/>.
    /// </summary>
    public static Task<LockHolder> AcquireAsync(NpgsqlDataSource dataSource, string table, string mode, TimeSpan holdFor, CancellationToken ct = default)
        => HoldAsync(dataSource, $"LOCK TABLE {table} IN {mode} MODE", holdFor, ct);

    /// <summary>
    /// What a reader holds on <paramref name="relation"/> for <paramref name="holdFor"/>: ACCESS
    /// SHARE taken by LOCK TABLE on a table or view, and on an index (which LOCK TABLE refuses) by
    /// a query of its table: the planner takes ACCESS SHARE on every index of the table it plans
    /// for and keeps it to the end of the transaction, as a long report query does (the index of a
    /// partition that a partitioned index build attaches under ACCESS EXCLUSIVE).
    /// </summary>
    public static async Task<LockHolder> AcquireReadingAsync(NpgsqlDataSource dataSource, string relation, TimeSpan holdFor, CancellationToken ct = default)
    {
        await using var find = dataSource.CreateCommand("SELECT i.indrelid::regclass::text FROM pg_catalog.pg_index i WHERE i.indexrelid = to_regclass($1)");
        find.Parameters.Add(new NpgsqlParameter { Value = relation });
        var table = await find.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
        return await HoldAsync(dataSource, table is null ? $"LOCK TABLE {relation} IN ACCESS SHARE MODE" : $"SELECT FROM {table} WHERE false", holdFor, ct).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="sql"/> in a new transaction and keeps that transaction (and the locks the statement took) for <paramref name="holdFor"/>.</summary>
    private static async Task<LockHolder> HoldAsync(NpgsqlDataSource dataSource, string sql, TimeSpan holdFor, CancellationToken ct)
    {
        var connection = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        try
        {
            var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using (var cmd = new NpgsqlCommand(sql, connection, transaction))
            {
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            return new LockHolder(connection, transaction, holdFor);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Ends the transaction now instead of at the end of the hold time.</summary>
    public async Task ReleaseAsync()
    {
        await _release.CancelAsync().ConfigureAwait(false);
        await _released.ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await ReleaseAsync().ConfigureAwait(false);
        _release.Dispose();
    }

    private async Task ReleaseAfterAsync(TimeSpan holdFor)
    {
        try
        {
            await Task.Delay(holdFor, _release.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        try
        {
            await _transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            await _transaction.DisposeAsync().ConfigureAwait(false);
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
