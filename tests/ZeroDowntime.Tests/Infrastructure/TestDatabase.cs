using System.Globalization;
using System.Security.Cryptography;
using Npgsql;
using Xunit;

namespace ZeroDowntime.Tests.Infrastructure;

/// <summary>
/// A fresh, empty database on <see cref="PostgresServer.Shared"/> for one test class
/// (<c>IClassFixture&lt;TestDatabase&gt;</c>), dropped again when the class is done, so test
/// classes can run in parallel without seeing each other's tables.
/// </summary>
public sealed class TestDatabase : IAsyncLifetime
{
    private const string NamePrefix = "zdt_t_";
    private const string DuplicateDatabase = "42P04";

    private string? _databaseName;
    private string? _connectionString;

    // xunit requires a class fixture to have exactly one public constructor, hence no server parameter.
    public TestDatabase()
    {
        Server = PostgresServer.Shared;
    }

    public PostgresServer Server { get; }

    /// <summary>The database's name, e.g. "zdt_t_1a2b3c4d".</summary>
    public string DatabaseName => _databaseName ?? throw NotInitialized();

    /// <summary>A superuser connection string to this database (pooled).</summary>
    public string ConnectionString => _connectionString ?? throw NotInitialized();

    public async Task InitializeAsync()
    {
        await using var admin = await OpenAdminAsync().ConfigureAwait(false);

        // Random names can collide (in theory) with a concurrent run on an external server; retry then.
        for (var attempt = 1; ; attempt++)
        {
            var name = NamePrefix + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
            try
            {
                // template0: the copy must not inherit whatever someone put into template1.
                await using var create = new NpgsqlCommand(
                    $"CREATE DATABASE {Quote(name)} TEMPLATE template0 ENCODING 'UTF8'", admin);
                await create.ExecuteNonQueryAsync().ConfigureAwait(false);
                _databaseName = name;
                _connectionString = Server.BuildConnectionString(database: name);
                return;
            }
            catch (PostgresException exception) when (exception.SqlState == DuplicateDatabase && attempt < 5)
            {
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (_databaseName is null)
        {
            return;
        }

        // Idle pooled connections to this database would otherwise block the drop or linger broken.
        await using (var pooled = new NpgsqlConnection(_connectionString))
        {
            NpgsqlConnection.ClearPool(pooled);
        }

        await using var admin = await OpenAdminAsync().ConfigureAwait(false);
        var name = Quote(_databaseName);
        if (admin.PostgreSqlVersion.Major >= 13)
        {
            // FORCE also ends connections a test leaked (e.g. a lock holder it never disposed).
            await ExecuteAsync(admin, $"DROP DATABASE IF EXISTS {name} WITH (FORCE)").ConfigureAwait(false);
        }
        else
        {
            await ExecuteAsync(admin,
                $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{_databaseName}' AND pid <> pg_backend_pid()")
                .ConfigureAwait(false);
            await ExecuteAsync(admin, $"DROP DATABASE IF EXISTS {name}").ConfigureAwait(false);
        }

        _databaseName = null;
        _connectionString = null;
    }

    /// <summary>Opens a new connection to this database; the caller disposes it.</summary>
    public async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        try
        {
            await connection.OpenAsync().ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs SQL (one or more statements) on a fresh connection to this database.</summary>
    public async Task ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync().ConfigureAwait(false);
        await ExecuteAsync(connection, sql).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs a query and returns the first column of the first row converted to <typeparamref name="T"/>,
    /// or default when there is no row or the value is NULL.
    /// </summary>
    public async Task<T?> ScalarAsync<T>(string sql)
    {
        await using var connection = await OpenAsync().ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync().ConfigureAwait(false);
        return ConvertScalar<T>(value);
    }

    private static T? ConvertScalar<T>(object? value)
    {
        if (value is null or DBNull)
        {
            return default;
        }

        if (value is T typed)
        {
            return typed;
        }

        // E.g. count(*) is bigint (long) but a test naturally asks for int.
        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        return (T)Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    private async Task<NpgsqlConnection> OpenAdminAsync()
    {
        var connection = new NpgsqlConnection(Server.ConnectionString);
        await connection.OpenAsync().ConfigureAwait(false);
        return connection;
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static InvalidOperationException NotInitialized() =>
        new("The test database does not exist: InitializeAsync has not run (or DisposeAsync already has).");
}
