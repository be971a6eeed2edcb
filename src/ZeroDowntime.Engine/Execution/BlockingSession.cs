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
    string Query)
{
    internal const string SelectColumns = """
        a.pid, COALESCE(a.usename::text, ''), COALESCE(a.application_name, ''), host(a.client_addr),
        COALESCE(a.state, ''), EXTRACT(epoch FROM clock_timestamp() - a.xact_start)::float8, left(COALESCE(a.query, ''), 300)
        """;

    internal static BlockingSession Read(NpgsqlDataReader reader) => new(
        reader.GetInt32(0),
        reader.GetString(1),
        reader.GetString(2),
        reader.IsDBNull(3) ? null : reader.GetString(3),
        reader.GetString(4),
        reader.IsDBNull(5) ? null : TimeSpan.FromSeconds(reader.GetDouble(5)),
        reader.GetString(6));

    public override string ToString()
    {
        var age = TransactionAge is { } t ? string.Create(CultureInfo.InvariantCulture, $", transaction open {t.TotalSeconds:0.0} s") : "";
        var app = ApplicationName.Length > 0 ? $", application '{ApplicationName}'" : "";
        var client = ClientAddress is null ? "" : $", from {ClientAddress}";
        return $"pid {Pid} (user {User}{app}{client}, {State}{age}): {Query}";
    }
}
