using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>Connection failures through the engine: specific errors, and never the password in them.</summary>
public class ConnectionErrorTests : IClassFixture<TestDatabase>
{
    private const string WrongPassword = "Not-The-Password-7f3a;'@";
    private readonly TestDatabase _db;

    public ConnectionErrorTests(TestDatabase db)
    {
        _db = db;
    }

    /// <summary>A role with a password, so the wrong-password test works whatever auth the server trusts locally.</summary>
    private async Task<string> CreateRoleAsync()
    {
        var role = "zdt_pw_" + _db.DatabaseName;
        await _db.ExecuteAsync($"DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'the-right-one'");
        return role;
    }

    [ThrowawayServerFact]
    public async Task A_wrong_password_is_an_authentication_error_that_does_not_echo_the_password()
    {
        var role = await CreateRoleAsync();
        var server = PostgresServer.Shared;
        var target = ConnectionTarget.Resolve(server.BuildConnectionString(_db.DatabaseName, role, WrongPassword));
        var engine = new MigrationEngine(target);

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.GetMigrationsAsync(new MigrationQuery()));

        Assert.Equal("AuthenticationFailed", error.ErrorId);
        Assert.Equal(ErrorKind.AuthenticationError, error.Kind);
        Assert.Contains(role, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(WrongPassword, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("Not-The-Password", error.ToString(), StringComparison.Ordinal);
    }

    [ThrowawayServerFact]
    public async Task The_same_role_with_its_password_works_and_the_password_never_shows_in_outputs()
    {
        var role = await CreateRoleAsync();
        await _db.ExecuteAsync($"CREATE TABLE pw_t (id int PRIMARY KEY); ALTER TABLE pw_t OWNER TO {role}; GRANT CREATE ON SCHEMA public TO {role}");
        // Only a superuser or the database owner may create the ledger (issue 9, case 10).
        await _db.ExecuteAsync($"ALTER DATABASE {_db.DatabaseName} OWNER TO {role}");
        var server = PostgresServer.Shared;
        var uri = $"postgresql://{role}:the-right-one@{server.Host}:{server.Port}/{_db.DatabaseName}";
        var engine = new MigrationEngine(ConnectionTarget.Resolve(uri), Engines.Fast);

        var migration = await engine.RunAsync(await engine.PlanTableRenameAsync(new TableRenameRequest("public", "pw_t", "pw_t2")));
        var withEvents = await engine.GetMigrationAsync(migration.Id);

        var shown = string.Join("\n", new object?[] { migration, migration.Connection, migration.Connection?.SafeConnectionString }
            .Concat(typeof(ConnectionTarget).GetProperties().Select(p => p.GetValue(migration.Connection)))
            .Concat(withEvents.Events.Select(e => e.ToString())));
        Assert.DoesNotContain("the-right-one", shown, StringComparison.Ordinal);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM zdt.migration_event WHERE sql LIKE '%the-right-one%' OR message LIKE '%the-right-one%'"));
    }

    [Theory]
    [InlineData("Host=127.0.0.1;Pasword=s3cr3t-value")]
    [InlineData("Host=127.0.0.1;Port=notaport;Password=s3cr3t-value")]
    [InlineData("postgresql://user:s3cr3t-value@127.0.0.1:5432/db?sslmode=sometimes")]
    public void A_bad_connection_string_is_refused_without_echoing_the_password(string connectionString)
    {
        var error = Assert.Throws<ZdtException>(() => ConnectionTarget.Resolve(connectionString));

        Assert.Equal("InvalidConnectionString", error.ErrorId);
        Assert.DoesNotContain("s3cr3t-value", error.ToString(), StringComparison.Ordinal);
    }
}
