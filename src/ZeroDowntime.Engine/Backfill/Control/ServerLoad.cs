using System.Diagnostics;
using Npgsql;

namespace ZeroDowntime.Engine.Backfill.Control;

/// <summary>
/// The server's load for -MaxLoad, as the number of other sessions running a statement (what
/// gh-ost's Threads_running is on MySQL), taken as the larger of two readings:
/// <list type="bullet">
/// <item>now: client backends of pg_stat_activity in state 'active', ours excluded. Without
/// pg_read_all_stats (or superuser) PostgreSQL hides the state of other roles' sessions, so a plain
/// role counts only its own role's sessions here;</item>
/// <item>on average since the previous reading (at least a window of <see cref="Window"/>): the growth
/// of pg_stat_database.active_time (PostgreSQL 14+, time spent running statements in this
/// database, readable by every role and counting every role's sessions) divided by the wall time,
/// less the time our own batches ran. It is reported when statements end (and flushed about once a
/// second), so it misses a long statement still running, which the first reading sees.</item>
/// </list>
/// Neither needs superuser or an extension. On 13 only the first reading exists.
/// </summary>
internal sealed class ServerLoad
{
    /// <summary>Shorter windows would mostly measure when the statistics happened to be flushed.</summary>
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(2);

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private (TimeSpan At, double ActiveMs, double OwnMs)? _previous;
    private double _ownActiveMs;
    private double _lastAverage;

    /// <summary>Time our own batches spent running: it is in active_time too and must not count as load.</summary>
    public void AddOwnActiveTime(TimeSpan batch) => _ownActiveMs += batch.TotalMilliseconds;

    public async Task<double> ReadAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        // to_jsonb: active_time exists from 14 on; reading it by name keeps one query for 13..17.
        const string sql = """
            SELECT (SELECT count(*) FROM pg_stat_activity
                    WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid())::float8,
                   (SELECT (to_jsonb(d) ->> 'active_time')::float8 FROM pg_stat_database d WHERE d.datname = current_database())
            """;
        await using var cmd = new NpgsqlCommand(sql, connection);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        var activeNow = reader.GetDouble(0);
        if (reader.IsDBNull(1))
        {
            return activeNow;
        }

        var activeMs = reader.GetDouble(1);
        var now = _clock.Elapsed;
        var average = 0.0;
        if (_previous is { } previous)
        {
            var wall = (now - previous.At).TotalMilliseconds;
            if (wall < Window.TotalMilliseconds)
            {
                return Math.Max(activeNow, _lastAverage);
            }

            average = Math.Max(0, (activeMs - previous.ActiveMs - (_ownActiveMs - previous.OwnMs)) / wall);
        }

        _previous = (now, activeMs, _ownActiveMs);
        _lastAverage = average;
        return Math.Max(activeNow, average);
    }
}
