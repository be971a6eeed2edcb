using System.Globalization;
using Npgsql;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine.Backfill;

/// <summary>
/// The step that ends a backfill: <c>VACUUM (ANALYZE)</c> of each table it walked. A backfill
/// leaves a dead version of every row it filled, which wakes autovacuum right when the contract
/// comes; an autovacuum worker holds SHARE UPDATE EXCLUSIVE for as long as it works, the contract's
/// ACCESS EXCLUSIVE waits behind it, and with our lock_timeout below deadlock_timeout PostgreSQL
/// never cancels the worker on our behalf (it does so only for a waiter that has waited
/// deadlock_timeout). Vacuuming here leaves autovacuum nothing to start for (docs/architecture.md,
/// "After the backfill: VACUUM (ANALYZE)").
/// </summary>
internal static class VacuumAfterBackfill
{
    /// <summary>What the step is planned from: the server's settings, read-only, readable by every role.</summary>
    internal sealed record Settings(TimeSpan DeadlockTimeout, double? AutovacuumCostDelayMs, int? AutovacuumCostLimit)
    {
        public static async Task<Settings> ReadAsync(NpgsqlConnection connection, CancellationToken ct)
        {
            // pg_settings gives the numbers in their base unit (ms here) whatever the configured spelling.
            await using var cmd = new NpgsqlCommand(
                """
                SELECT (SELECT setting::float8 FROM pg_settings WHERE name = 'deadlock_timeout'),
                       (SELECT setting::float8 FROM pg_settings WHERE name = 'autovacuum_vacuum_cost_delay'),
                       (SELECT setting::int FROM pg_settings WHERE name = 'autovacuum_vacuum_cost_limit')
                """,
                connection);
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            var delay = reader.GetDouble(1);
            var limit = reader.GetInt32(2);

            // -1 means "as vacuum_cost_delay / vacuum_cost_limit", which our session already has.
            return new Settings(TimeSpan.FromMilliseconds(reader.GetDouble(0)), delay < 0 ? null : delay, limit <= 0 ? null : limit);
        }
    }

    /// <summary>
    /// The longest deadlock_timeout the step outwaits. Waiting longer than deadlock_timeout makes
    /// PostgreSQL cancel an autovacuum worker in our way; while we wait, other DDL and VACUUM on the
    /// table queue behind us (never the application's reads and writes), so that wait stays short.
    /// </summary>
    private static readonly TimeSpan LongestOutwaited = TimeSpan.FromSeconds(5);

    /// <summary>How much longer than deadlock_timeout the step waits: the deadlock check runs once, at deadlock_timeout.</summary>
    private static readonly TimeSpan Margin = TimeSpan.FromSeconds(1);

    public static DdlStep Plan(TableInfo table, Settings settings, TimeSpan engineLockTimeout)
    {
        var statements = new List<string>();

        // Autovacuum's own pace: the same cost to the application as the autovacuum it replaces,
        // taken now instead of during the contract. A manual VACUUM defaults to no cost delay at all.
        if (settings.AutovacuumCostDelayMs is { } delay)
        {
            statements.Add(string.Create(CultureInfo.InvariantCulture, $"SET vacuum_cost_delay = '{delay:0.###}ms'"));
        }

        if (settings.AutovacuumCostLimit is { } limit)
        {
            statements.Add(string.Create(CultureInfo.InvariantCulture, $"SET vacuum_cost_limit = {limit}"));
        }

        statements.Add($"VACUUM (ANALYZE) {table.QualifiedName}");

        var outwaits = settings.DeadlockTimeout <= LongestOutwaited;
        var lockTimeout = outwaits ? settings.DeadlockTimeout + Margin : engineLockTimeout;
        if (lockTimeout < engineLockTimeout)
        {
            lockTimeout = engineLockTimeout;
        }

        var why = string.Create(
            CultureInfo.InvariantCulture,
            $"removes the dead row versions the backfill left and refreshes the statistics, at autovacuum's pace, so autovacuum has no reason to start on {table.QualifiedName} right before the contract (an autovacuum worker holds SHARE UPDATE EXCLUSIVE, which the contract waits for). SHARE UPDATE EXCLUSIVE blocks no read or write; while it waits, only other DDL and VACUUM on the table queue behind it. ")
            + (outwaits
                ? string.Create(CultureInfo.InvariantCulture, $"Its lock_timeout ({lockTimeout.TotalMilliseconds:0} ms) is above deadlock_timeout ({settings.DeadlockTimeout.TotalMilliseconds:0} ms), so PostgreSQL cancels an autovacuum worker in its way (never one preventing wraparound). ")
                : string.Create(CultureInfo.InvariantCulture, $"deadlock_timeout ({settings.DeadlockTimeout.TotalSeconds:0.#} s) is too long to outwait, so an autovacuum worker in its way is not cancelled by PostgreSQL. "))
            + "If it cannot get its lock or is interrupted, the backfill is still finished: only a warning says so (Invoke-Backfill -SkipVacuum leaves it out).";

        return new DdlStep($"VACUUM (ANALYZE) {table.QualifiedName} after the backfill", statements, LockLevel.ShareUpdateExclusive, table.QualifiedName, why)
        {
            Transactional = false,
            LockTimeout = lockTimeout,
        };
    }
}
