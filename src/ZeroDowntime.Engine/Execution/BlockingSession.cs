using System.Globalization;
using Npgsql;

namespace ZeroDowntime.Engine.Execution;

/// <summary>A session that held (or was queued ahead for) a lock our DDL needed, from pg_stat_activity.</summary>
public sealed record BlockingSession(
    int Pid,
    string User,
    string ApplicationName,
    string? ClientAddress,
    string State,
    TimeSpan? TransactionAge,
    string Query,
    string BackendType)
{
    /// <summary>pg_stat_activity.backend_type of an autovacuum worker (PostgreSQL 10+).</summary>
    internal const string AutovacuumWorker = "autovacuum worker";

    /// <summary>What pg_stat_activity shows instead of the query of a session the current role may not see.</summary>
    private const string HiddenQuery = "<insufficient privilege>";

    public bool IsAutovacuum => BackendType == AutovacuumWorker;

    /// <summary>Whether the query text is visible to the current role (its own sessions, pg_read_all_stats, superuser).</summary>
    public bool QueryVisible => Query != HiddenQuery;

    /// <summary>
    /// An autovacuum worker that prevents transaction id wraparound says so in its query
    /// ("autovacuum: VACUUM t (to prevent wraparound)"); PostgreSQL never cancels it for a lock
    /// waiter, and neither does the engine. Only meaningful when <see cref="QueryVisible"/>.
    /// </summary>
    public bool PreventsWraparound => Query.Contains("(to prevent wraparound)", StringComparison.Ordinal);

    internal const string SelectColumns = """
        a.pid, COALESCE(a.usename::text, ''), COALESCE(a.application_name, ''), host(a.client_addr),
        COALESCE(a.state, ''), EXTRACT(epoch FROM clock_timestamp() - a.xact_start)::float8, left(COALESCE(a.query, ''), 300),
        COALESCE(a.backend_type, '')
        """;

    internal static BlockingSession Read(NpgsqlDataReader reader) => new(
        reader.GetInt32(0),
        reader.GetString(1),
        reader.GetString(2),
        reader.IsDBNull(3) ? null : reader.GetString(3),
        reader.GetString(4),
        reader.IsDBNull(5) ? null : TimeSpan.FromSeconds(reader.GetDouble(5)),
        reader.GetString(6),
        reader.GetString(7));

    public override string ToString()
    {
        var age = TransactionAge is { } t ? string.Create(CultureInfo.InvariantCulture, $", transaction open {t.TotalSeconds:0.0} s") : "";
        var app = ApplicationName.Length > 0 ? $", application '{ApplicationName}'" : "";
        var client = ClientAddress is null ? "" : $", from {ClientAddress}";
        return IsAutovacuum
            ? $"pid {Pid} ({AutovacuumWorker}{age}): {Query}"
            : $"pid {Pid} (user {User}{app}{client}, {State}{age}): {Query}";
    }
}
