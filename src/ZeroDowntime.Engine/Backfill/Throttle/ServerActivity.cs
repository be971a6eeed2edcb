using Npgsql;
using ZeroDowntime.Engine.Connections;

namespace ZeroDowntime.Engine.Backfill.Throttle;

/// <summary>
/// The whole server's work counters at one instant, from <c>pg_stat_database</c> (summed over every
/// database: the application may live in another database, and it shares the same CPUs and disks).
/// Visible to every role, no extension. Active time exists from PostgreSQL 14 on; null before.
/// </summary>
internal readonly record struct ActivitySample(TimeSpan At, long Transactions, double? ActiveMilliseconds);

/// <summary>What the rest of the server did between two samples, our own work taken out.</summary>
/// <param name="Seconds">The length of the window.</param>
/// <param name="TransactionsPerSecond">Commits and rollbacks per second of every session but ours.</param>
/// <param name="ActiveSessions">The mean number of other sessions running a statement (active time per second); null before PostgreSQL 14.</param>
/// <param name="HalvesSpread">
/// How far the rates of the window's two halves differ, relative to the whole window's
/// ((first - second) / whole): the window's own noise, one sample of it. Null when the window has
/// too few reads to split or no transactions.
/// </param>
internal readonly record struct OthersActivity(double Seconds, double TransactionsPerSecond, double? ActiveSessions, double? HalvesSpread = null)
{
    /// <summary>A half needs this many reads for a slope of its own.</summary>
    private const int ReadsPerHalf = 3;

    /// <summary>
    /// The others' rates over a window of reads: the least-squares slope of their counters (ours
    /// taken out at each read). Each backend publishes its counters about once a second, so the
    /// counters climb in steps; a slope over many reads is steadier than the difference of two.
    /// </summary>
    public static OthersActivity Fit(IReadOnlyList<OthersPoint> points)
    {
        var seconds = points.Count > 1 ? (points[^1].At - points[0].At).TotalSeconds : 0;
        if (points.Count < 2 || seconds <= 0)
        {
            return new OthersActivity(0, 0, null);
        }

        var transactions = Slope(points, p => p.Transactions);
        double? active = points.All(p => p.ActiveMilliseconds is not null) ? Slope(points, p => p.ActiveMilliseconds!.Value) / 1000.0 : null;
        return new OthersActivity(seconds, Math.Max(0, transactions), active is { } a ? Math.Max(0, a) : null, HalvesSpreadOf(points, transactions));
    }

    private static double? HalvesSpreadOf(IReadOnlyList<OthersPoint> points, double transactions)
    {
        if (points.Count < 2 * ReadsPerHalf || transactions <= 0)
        {
            return null;
        }

        // The halves share the middle read, so together they cover the window exactly once.
        var middle = points.Count / 2;
        var first = Slope(points.Take(middle + 1).ToList(), p => p.Transactions);
        var second = Slope(points.Skip(middle).ToList(), p => p.Transactions);
        return (first - second) / transactions;
    }

    private static double Slope(IReadOnlyList<OthersPoint> points, Func<OthersPoint, double> y)
    {
        var meanT = points.Average(p => p.At.TotalSeconds);
        var meanY = points.Average(y);
        double num = 0, den = 0;
        foreach (var p in points)
        {
            var dt = p.At.TotalSeconds - meanT;
            num += dt * (y(p) - meanY);
            den += dt * dt;
        }

        return den > 0 ? num / den : 0;
    }
}

/// <summary>One read of the counters with the backfill's own share taken out (cumulative values).</summary>
internal readonly record struct OthersPoint(TimeSpan At, double Transactions, double? ActiveMilliseconds)
{
    public static OthersPoint From(ActivitySample sample, long ownTransactions, TimeSpan ownActive)
        => new(sample.At, sample.Transactions - ownTransactions, sample.ActiveMilliseconds - ownActive.TotalMilliseconds);
}

/// <summary>
/// Reads <see cref="ActivitySample"/>s on a connection of its own, kept open for the whole backfill.
/// Each read is one autocommit transaction, which the counters include: <see cref="OwnTransactionsPerSample"/>
/// is subtracted with the backfill's own.
/// </summary>
internal sealed class ServerActivitySampler : IAsyncDisposable
{
    /// <summary>The sample's own SELECT counts as one transaction on the server.</summary>
    public const int OwnTransactionsPerSample = 1;

    private readonly ConnectionTarget _target;
    private readonly System.Diagnostics.Stopwatch _clock;
    private NpgsqlConnection? _connection;
    private string? _sql;

    public ServerActivitySampler(ConnectionTarget target, System.Diagnostics.Stopwatch clock)
    {
        _target = target;
        _clock = clock;
    }

    public async Task<ActivitySample> SampleAsync(CancellationToken ct)
    {
        if (_connection is null)
        {
            _connection = await _target.OpenAsync(ct).ConfigureAwait(false);
            await using var version = new NpgsqlCommand("SELECT current_setting('server_version_num')::int", _connection);
            var number = (int)(await version.ExecuteScalarAsync(ct).ConfigureAwait(false))!;

            // active_time (ms spent running statements, every backend) arrived in PostgreSQL 14.
            var active = number >= 140000 ? "sum(active_time)::float8" : "NULL::float8";
            _sql = $"SELECT sum(xact_commit + xact_rollback)::bigint, {active} FROM pg_catalog.pg_stat_database";
        }

        await using var cmd = new NpgsqlCommand(_sql, _connection);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        return new ActivitySample(_clock.Elapsed, reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetDouble(1));
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
