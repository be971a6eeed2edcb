using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace ZeroDowntime.Engine.Backfill.Control;

/// <summary>
/// -MaxReplicationLag: the replay lag of connected replicas (pg_stat_replication), and replicas
/// that are not connected at all. A disconnected replica leaves pg_stat_replication and would read
/// as no lag, while its replication slot keeps the primary's WAL (our writes) piling up. Such a slot
/// counts as lagging by the time it has been seen inactive with its retained WAL growing: a standby
/// that has been gone that long is at least that far behind. A slot is forgotten when it is active
/// again (its replica then shows in pg_stat_replication), dropped, or lost (wal_status 'lost': its
/// WAL is gone, holding back does not help it).
/// </summary>
internal sealed class ReplicaWatch
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Dictionary<string, (TimeSpan FirstSeen, double FirstBytes)> _inactive = new(StringComparer.Ordinal);

    /// <summary>Null when every replica is within the limit; else why not, in words.</summary>
    public async Task<string?> OverLimitAsync(NpgsqlConnection connection, TimeSpan maxLag, CancellationToken ct)
    {
        await using (var cmd = new NpgsqlCommand("SELECT COALESCE(EXTRACT(epoch FROM max(replay_lag)), 0)::float8 FROM pg_stat_replication", connection))
        {
            var lag = TimeSpan.FromSeconds((double)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!);
            if (lag > maxLag)
            {
                return string.Create(CultureInfo.InvariantCulture, $"replica replay lag {lag.TotalSeconds:0.0} s is above {maxLag.TotalSeconds:0.0} s");
            }
        }

        const string slots = """
            SELECT slot_name::text, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8
            FROM pg_replication_slots
            WHERE NOT active AND restart_lsn IS NOT NULL AND wal_status IS DISTINCT FROM 'lost'
            """;
        var seen = new Dictionary<string, double>(StringComparer.Ordinal);
        await using (var cmd = new NpgsqlCommand(slots, connection))
        await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                seen[reader.GetString(0)] = reader.GetDouble(1);
            }
        }

        foreach (var gone in _inactive.Keys.Where(name => !seen.ContainsKey(name)).ToList())
        {
            _inactive.Remove(gone);
        }

        var now = _clock.Elapsed;
        string? worst = null;
        var worstLag = TimeSpan.Zero;
        foreach (var (name, bytes) in seen)
        {
            if (!_inactive.TryGetValue(name, out var first))
            {
                _inactive[name] = (now, bytes);
                continue;
            }

            var behind = now - first.FirstSeen;
            if (bytes > first.FirstBytes && behind > maxLag && behind > worstLag)
            {
                worstLag = behind;
                worst = string.Create(CultureInfo.InvariantCulture, $"replication slot \"{name}\" has had no replica connected for {behind.TotalSeconds:0.0} s while the WAL it retains grew to {bytes / 1048576:0.0} MB; that counts as lag above {maxLag.TotalSeconds:0.0} s (reconnect the replica, or drop the slot if it is abandoned)");
            }
        }

        return worst;
    }
}
