using Npgsql;
using Xunit;

namespace ZeroDowntime.Tests.Infrastructure;

/// <summary>Checks the test infrastructure itself, so a broken fixture fails here and not as noise elsewhere.</summary>
public sealed class FixtureSmokeTests : IClassFixture<TestDatabase>
{
    private const string InvalidPassword = "28P01";

    private readonly TestDatabase _database;

    public FixtureSmokeTests(TestDatabase database)
    {
        _database = database;
    }

    [Fact]
    public async Task TestDatabase_CanCreateInsertAndReadBack()
    {
        await _database.ExecuteAsync("CREATE TABLE smoke (id int PRIMARY KEY, name text NOT NULL)");
        await _database.ExecuteAsync("INSERT INTO smoke VALUES (1, 'één'), (2, 'two')");

        Assert.Equal(2, await _database.ScalarAsync<int>("SELECT count(*) FROM smoke"));
        Assert.Equal("één", await _database.ScalarAsync<string>("SELECT name FROM smoke WHERE id = 1"));
        Assert.Null(await _database.ScalarAsync<string>("SELECT name FROM smoke WHERE id = 3"));
        Assert.Equal(_database.DatabaseName, await _database.ScalarAsync<string>("SELECT current_database()"));
    }

    [Fact]
    public async Task TwoFixtures_GetDifferentDatabases_ThatAreDroppedAfterwards()
    {
        var first = new TestDatabase();
        var second = new TestDatabase();
        await first.InitializeAsync();
        await second.InitializeAsync();
        var names = (first.DatabaseName, second.DatabaseName);
        try
        {
            Assert.NotEqual(names.Item1, names.Item2);
            Assert.StartsWith("zdt_t_", names.Item1, StringComparison.Ordinal);
            await first.ExecuteAsync("CREATE TABLE only_in_first (id int)");
            Assert.Equal(0, await second.ScalarAsync<int>("SELECT count(*) FROM pg_class WHERE relname = 'only_in_first'"));
        }
        finally
        {
            await first.DisposeAsync();
            await second.DisposeAsync();
        }

        Assert.Equal(0, await _database.ScalarAsync<int>(
            $"SELECT count(*) FROM pg_database WHERE datname IN ('{names.Item1}', '{names.Item2}')"));
    }

    [ThrowawayServerFact]
    public async Task ThrowawayServer_RejectsWrongPasswordOverTcp()
    {
        var server = PostgresServer.Shared;
        Assert.True(server.IsThrowaway);
        var builder = new NpgsqlConnectionStringBuilder(server.BuildConnectionString(password: "not-" + server.Password))
        {
            Pooling = false,
        };

        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        var exception = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());

        Assert.Equal(InvalidPassword, exception.SqlState);
    }
}

/// <summary>
/// A fact that only runs against the throwaway cluster, whose authentication setup the test
/// knows; against a ZDT_TEST_CONNECTION server it is reported as skipped, not as passed.
/// </summary>
public sealed class ThrowawayServerFactAttribute : FactAttribute
{
    public ThrowawayServerFactAttribute()
    {
        if (PostgresServer.UsesExternalServer)
        {
            Skip = $"{PostgresServer.ConnectionEnvironmentVariable} is set, so there is no throwaway cluster to test.";
        }
    }
}
