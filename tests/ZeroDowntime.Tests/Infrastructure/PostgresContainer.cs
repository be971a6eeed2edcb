using Npgsql;
using Testcontainers.PostgreSql;

namespace ZeroDowntime.Tests.Infrastructure;

public sealed partial class PostgresServer
{
    static partial void StartContainer(string image, ref NpgsqlConnectionStringBuilder? connection) =>
        connection = PostgresContainer.Start(image).ConnectionStringBuilder;
}

/// <summary>
/// A PostgreSQL container (Testcontainers) for the whole test process, used when
/// ZDT_TEST_POSTGRES_IMAGE names an image: an official postgres:NN image where a registry is
/// reachable, or one built locally by .ci/postgres-image/build (the default pull policy pulls
/// only what is missing). It is reached through 127.0.0.1 and the published port only, and
/// removed when the process exits.
/// </summary>
internal sealed class PostgresContainer
{
    private const int ServerPort = 5432;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(3);

    private readonly PostgreSqlContainer _container;
    private int _stopped;

    private PostgresContainer(PostgreSqlContainer container, NpgsqlConnectionStringBuilder builder)
    {
        _container = container;
        ConnectionStringBuilder = builder;
    }

    public NpgsqlConnectionStringBuilder ConnectionStringBuilder { get; }

    public static PostgresContainer Start(string image)
    {
        var password = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        var container = new PostgreSqlBuilder(image)
            .WithUsername(ThrowawayCluster.Superuser)
            .WithPassword(password)
            .WithDatabase("postgres")
            // The same server settings as the local throwaway cluster (durability is worthless here).
            .WithCommand("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200", "-c", "shared_buffers=256MB")
            .WithLabel("zdt.tests", "true")
            .Build();

        // Registered before the start so that even a half-started container is removed.
        var server = new PostgresContainer(container, new NpgsqlConnectionStringBuilder());
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();

        using (var timeout = new CancellationTokenSource(StartTimeout))
        {
            try
            {
                container.StartAsync(timeout.Token).GetAwaiter().GetResult();
            }
            catch (Exception exception)
            {
                server.Stop();
                throw new InvalidOperationException(
                    $"Could not start a PostgreSQL container from '{image}' ({PostgresServer.ImageEnvironmentVariable}). Docker must be " +
                    "running; without a reachable registry the image must exist locally (bash .ci/postgres-image/build 15), and " +
                    "TESTCONTAINERS_RYUK_DISABLED=true is needed (the reaper image cannot be pulled either). Against an older " +
                    "engine set DOCKER_API_VERSION (e.g. 1.41).", exception);
            }
        }

        // 127.0.0.1, whatever host name Testcontainers would use (a bridge address inside a container).
        var builder = server.ConnectionStringBuilder;
        builder.Host = "127.0.0.1";
        builder.Port = container.GetMappedPublicPort(ServerPort);
        builder.Username = ThrowawayCluster.Superuser;
        builder.Password = password;
        builder.Database = "postgres";
        builder.Pooling = true;
        builder.IncludeErrorDetail = true;
        return server;
    }

    /// <summary>Removes the container. Best effort, safe to call more than once.</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        try
        {
            NpgsqlConnection.ClearAllPools();
            _container.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(20));
        }
        catch (Exception)
        {
            // Going away anyway; .ci/run removes containers labelled zdt.tests that outlive it.
        }
    }
}
