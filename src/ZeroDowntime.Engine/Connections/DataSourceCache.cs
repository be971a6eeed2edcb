using System.Collections.Concurrent;
using Npgsql;

namespace ZeroDowntime.Engine.Connections;

/// <summary>
/// One <see cref="NpgsqlDataSource"/> (and so one connection pool) per distinct connection string,
/// for the life of the process.
/// </summary>
/// <remarks>
/// A <see cref="ConnectionTarget"/> is deliberately not IDisposable: it travels in output objects
/// down a PowerShell pipeline and into later commands, and nothing would reliably dispose it.
/// Owning the data sources here instead means targets resolved from the same settings (say, by
/// each command in a script) share one pool rather than each leaking their own. The key is the
/// full connection string, password included, so different credentials never share a pool; it
/// lives only in this process's memory. Processes use few distinct targets, so the cache is never
/// trimmed. Every data source starts its sessions with <see cref="SessionSettings"/>.
/// </remarks>
internal static class DataSourceCache
{
    static readonly ConcurrentDictionary<string, Lazy<NpgsqlDataSource>> Sources = new(StringComparer.Ordinal);

    public static NpgsqlDataSource Get(string connectionString)
    {
        // Lazy makes sure that when two threads race, only one data source is ever built.
        var source = Sources.GetOrAdd(
            connectionString,
            static key => new Lazy<NpgsqlDataSource>(() => NpgsqlDataSource.Create(SessionSettings.Apply(key)), LazyThreadSafetyMode.ExecutionAndPublication));
        try
        {
            return source.Value;
        }
        catch
        {
            // Lazy would remember the failure forever; let a later call try again instead.
            Sources.TryRemove(KeyValuePair.Create(connectionString, source));
            throw;
        }
    }
}
