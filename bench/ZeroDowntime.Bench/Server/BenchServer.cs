using Npgsql;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Bench.Server;

/// <summary>
/// The PostgreSQL server a run talks to: the one named by --connection or the PG* variables, or
/// else a throwaway cluster started from the machine's binaries exactly as the tests do (and
/// removed at the end). Everything the bench creates lives in two schemas of its own, so on an
/// existing server it touches nothing else, and they are dropped again at the end.
/// </summary>
public sealed class BenchServer : IAsyncDisposable
{
    /// <summary>Where the bench's tables go.</summary>
    public const string DataSchema = "zdt_bench";

    /// <summary>The engine's ledger (and sync functions) for bench migrations, apart from any real ledger.</summary>
    public const string LedgerSchema = "zdt_bench_ledger";

    private static readonly string[] ConnectionVariables = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"];

    private readonly ThrowawayCluster? _cluster;
    private readonly List<NpgsqlDataSource> _dataSources = new();

    private BenchServer(ConnectionTarget target, ThrowawayCluster? cluster, string serverVersion)
    {
        Target = target;
        _cluster = cluster;
        ServerVersion = serverVersion;
        Admin = CreateDataSource("zdt-bench-admin");
    }

    public ConnectionTarget Target { get; }

    public bool IsThrowaway => _cluster is not null;

    public string ServerVersion { get; }

    /// <summary>For setup, measurement queries and cleanup; never used by the simulated application.</summary>
    public NpgsqlDataSource Admin { get; }

    public string Description => IsThrowaway
        ? $"throwaway PostgreSQL {ServerVersion} on 127.0.0.1:{Target.Port} (fsync off; removed at the end)"
        : $"PostgreSQL {ServerVersion} at {Target} (schemas {DataSchema} and {LedgerSchema} are dropped at the end)";

    /// <summary>True when --connection or any libpq connection variable names a server to use.</summary>
    public static bool ExternalRequested(string? connection)
        => !string.IsNullOrWhiteSpace(connection)
            || ConnectionVariables.Any(v => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(v)));

    public static async Task<BenchServer> StartAsync(string? connection, bool forceThrowaway, CancellationToken ct)
    {
        if (!forceThrowaway && ExternalRequested(connection))
        {
            var target = ConnectionTarget.Resolve(connection);
            return new BenchServer(target, null, await QueryVersionAsync(target, ct).ConfigureAwait(false));
        }

        var cluster = await Task.Run(ThrowawayCluster.Start, ct).ConfigureAwait(false);
        try
        {
            var builder = new NpgsqlConnectionStringBuilder
            {
                Host = "127.0.0.1",
                Port = cluster.Port,
                Username = ThrowawayCluster.Superuser,
                Password = cluster.Password,
                Database = "postgres",
            };
            var target = ConnectionTarget.Resolve(builder.ConnectionString);
            return new BenchServer(target, cluster, await QueryVersionAsync(target, ct).ConfigureAwait(false));
        }
        catch
        {
            cluster.Stop();
            throw;
        }
    }

    /// <summary>
    /// A connection pool of its own, named in pg_stat_activity (so a DBA watching the run, and the
    /// engine's blocker reports, can tell the application from the lock holder from the engine).
    /// </summary>
    public NpgsqlDataSource CreateDataSource(string applicationName, int maxPoolSize = 50)
    {
        var builder = Target.CreateBuilder();
        builder.ApplicationName = applicationName;
        builder.MaxPoolSize = maxPoolSize;
        builder.CommandTimeout = 0; // a 10-million-row UPDATE takes minutes; the workload sets its own
        builder.IncludeErrorDetail = true;
        var dataSource = NpgsqlDataSource.Create(builder);
        lock (_dataSources)
        {
            _dataSources.Add(dataSource);
        }

        return dataSource;
    }

    /// <summary>Drops what an earlier (perhaps interrupted) run left and creates the data schema.</summary>
    public async Task ResetSchemasAsync(CancellationToken ct)
    {
        await DropSchemasAsync(ct).ConfigureAwait(false);
        await Sql.ExecuteAsync(Admin, $"CREATE SCHEMA {DataSchema}", ct).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!IsThrowaway)
            {
                await DropSchemasAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (NpgsqlException)
        {
            // Best effort; the next run drops them first anyway.
        }

        List<NpgsqlDataSource> sources;
        lock (_dataSources)
        {
            sources = _dataSources.ToList();
        }

        foreach (var source in sources)
        {
            await source.DisposeAsync().ConfigureAwait(false);
        }

        _cluster?.Stop();
    }

    private async Task DropSchemasAsync(CancellationToken ct)
    {
        await Sql.ExecuteAsync(Admin, $"DROP SCHEMA IF EXISTS {DataSchema} CASCADE", ct).ConfigureAwait(false);
        await Sql.ExecuteAsync(Admin, $"DROP SCHEMA IF EXISTS {LedgerSchema} CASCADE", ct).ConfigureAwait(false);
    }

    private static async Task<string> QueryVersionAsync(ConnectionTarget target, CancellationToken ct)
    {
        await using var connection = await target.OpenAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand("SHOW server_version", connection);
        var version = (string?)await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) ?? connection.ServerVersion;
        var space = version.IndexOf(' ', StringComparison.Ordinal);
        return space > 0 ? version[..space] : version;
    }
}
