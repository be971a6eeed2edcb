using System.Globalization;
using Npgsql;
using ZeroDowntime.Engine.Observing;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine.Execution;

/// <summary>
/// What the lock-safe executor does about an autovacuum worker among a waiting step's blockers.
/// PostgreSQL cancels a (non-wraparound) autovacuum worker that blocks a lock waiter once the
/// waiter has waited deadlock_timeout; our steps' lock_timeout is shorter, so it never does it for
/// us, and the step would retry for as long as the worker runs (82 s after a 10M-row backfill). So
/// the engine does what PostgreSQL would: it cancels the worker, when the role may signal it (a
/// superuser before PostgreSQL 18; from 18 also pg_signal_autovacuum_worker), and never a worker that
/// prevents wraparound. Each case is one verbose line.
/// </summary>
internal static class AutovacuumBlockers
{
    public static async Task HandleAsync(NpgsqlConnection monitor, IReadOnlyList<BlockingSession> blockers, DdlStep step, TimeSpan lockTimeout, IMigrationObserver observer, CancellationToken ct)
    {
        foreach (var worker in blockers.Where(b => b.IsAutovacuum))
        {
            var about = $"'{step.Title}' waits for an autovacuum worker (pid {worker.Pid}) on {step.LockTarget}";
            if (!worker.QueryVisible)
            {
                observer.Verbose($"{about}; this role cannot see its query, so whether it prevents wraparound is unknown: it is not cancelled. A role with pg_read_all_stats sees it; the step keeps retrying until the worker is done.");
                continue;
            }

            if (worker.PreventsWraparound)
            {
                observer.Verbose($"{about} that prevents transaction id wraparound ({worker.Query}): it is never cancelled (PostgreSQL does not cancel it either); the step keeps retrying until it is done.");
                continue;
            }

            try
            {
                // Checked again at the moment of the cancel: the pid may have finished, moved on to
                // another table or started a wraparound vacuum since it was sampled.
                await using var cancel = new NpgsqlCommand(
                    """
                    SELECT pg_cancel_backend(a.pid) FROM pg_stat_activity a
                    WHERE a.pid = $1 AND a.backend_type = $2 AND a.query NOT LIKE '%(to prevent wraparound)%'
                      AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted AND l.relation = to_regclass($3))
                    """,
                    monitor);
                cancel.Parameters.Add(new NpgsqlParameter { Value = worker.Pid });
                cancel.Parameters.Add(new NpgsqlParameter { Value = BlockingSession.AutovacuumWorker });
                cancel.Parameters.Add(new NpgsqlParameter { Value = step.LockTarget });
                var cancelled = await cancel.ExecuteScalarAsync(ct).ConfigureAwait(false) is true;
                observer.Verbose(cancelled
                    ? $"{about} ({worker.Query}), not one preventing wraparound: cancelled it (pg_cancel_backend), as PostgreSQL itself does for a lock waiter after deadlock_timeout. Autovacuum comes back to the table later."
                    : $"{about} ({worker.Query}); it was gone or had moved on before it could be cancelled.");
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                var deadlockTimeout = await DeadlockTimeoutAsync(monitor, ct).ConfigureAwait(false);
                var refused = $"{about} ({worker.Query}), not one preventing wraparound, but this role may not cancel it ({e.MessageText}: before PostgreSQL 18 only a superuser may signal an autovacuum worker; from 18 also members of pg_signal_autovacuum_worker).";
                observer.Verbose(lockTimeout > deadlockTimeout
                    ? string.Create(CultureInfo.InvariantCulture, $"{refused} PostgreSQL cancels it by itself once this step has waited deadlock_timeout ({deadlockTimeout.TotalMilliseconds:0} ms), within its lock_timeout ({lockTimeout.TotalMilliseconds:0} ms).")
                    : string.Create(CultureInfo.InvariantCulture, $"{refused} PostgreSQL cancels it by itself only for a waiter that waits deadlock_timeout ({deadlockTimeout.TotalMilliseconds:0} ms), longer than this step's lock_timeout ({lockTimeout.TotalMilliseconds:0} ms). The step keeps retrying; to end the wait sooner run VACUUM (ANALYZE) {step.LockTarget} (it waits long enough to have the worker cancelled), or ask a superuser to run SELECT pg_cancel_backend({worker.Pid})."));
            }
        }
    }

    private static async Task<TimeSpan> DeadlockTimeoutAsync(NpgsqlConnection monitor, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT setting::float8 FROM pg_settings WHERE name = 'deadlock_timeout'", monitor);
        return TimeSpan.FromMilliseconds((double)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!);
    }
}
