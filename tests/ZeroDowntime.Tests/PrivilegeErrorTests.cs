using System.Security.Cryptography;
using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// A privilege the server refuses in the middle of a step (SQLSTATE 42501, not caught at planning)
/// reaches the user as InsufficientPrivilege naming the role, the object and the GRANT to run, not
/// as a raw server error. Each test works in a database of its own owned by a non-superuser role
/// (a role the ledger trusts), with tables owned by another role.
/// </summary>
public class PrivilegeErrorTests : IClassFixture<TestDatabase>
{
    private const string Password = "zdt-privilege-test";
    private readonly TestDatabase _db;

    public PrivilegeErrorTests(TestDatabase db)
    {
        _db = db;
    }

    private static string Unique(string prefix) => prefix + Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();

    private sealed record Setup(string Database, string DbOwner, string TableOwner);

    private async Task<Setup> CreateAsync(string tables)
    {
        var setup = new Setup(Unique("zdt_priv_"), Unique("zdt_dbo_"), Unique("zdt_tbo_"));
        await _db.ExecuteAsync($"CREATE ROLE {setup.DbOwner} LOGIN PASSWORD '{Password}'; CREATE ROLE {setup.TableOwner} NOLOGIN;");
        await _db.ExecuteAsync($"CREATE DATABASE {setup.Database} OWNER {setup.DbOwner} TEMPLATE template0");
        await ExecuteAsync(Superuser(setup), tables.Replace("TABLE_OWNER", setup.TableOwner, StringComparison.Ordinal).Replace("DB_OWNER", setup.DbOwner, StringComparison.Ordinal));
        return setup;
    }

    private string Superuser(Setup s) => _db.Server.BuildConnectionString(database: s.Database);

    private MigrationEngine EngineAs(string connectionString) => new(ConnectionTarget.Resolve(connectionString), Engines.Fast);

    private MigrationEngine AsDbOwner(Setup s) => EngineAs(_db.Server.BuildConnectionString(database: s.Database, username: s.DbOwner, password: Password));

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task DropAsync(Setup s)
    {
        NpgsqlConnection.ClearAllPools();
        await _db.ExecuteAsync($"DROP DATABASE IF EXISTS {s.Database} WITH (FORCE)");
    }

    [Fact]
    public async Task A_foreign_key_to_a_table_the_role_may_not_reference_is_refused_at_planning_naming_the_missing_privilege_and_the_grant()
    {
        var s = await CreateAsync("""
            CREATE TABLE customers (id int PRIMARY KEY); ALTER TABLE customers OWNER TO TABLE_OWNER;
            CREATE TABLE orders (id int PRIMARY KEY, customer_id int); ALTER TABLE orders OWNER TO DB_OWNER;
            """);
        try
        {
            var engine = AsDbOwner(s);

            var error = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanAddConstraintAsync(new AddConstraintRequest("public", "orders", ConstraintKind.ForeignKey) { Columns = new[] { "customer_id" }, ReferencedTable = "customers" }));

            Assert.Equal(ErrorIds.InsufficientPrivilege, error.ErrorId);
            Assert.Equal(ErrorKind.PermissionDenied, error.Kind);
            Assert.Contains("customers", error.Message, StringComparison.Ordinal);
            Assert.Contains($"GRANT REFERENCES ON \"public\".\"customers\" TO {s.DbOwner}", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            await DropAsync(s);
        }
    }

    [Fact]
    public async Task A_table_given_to_another_role_between_plan_and_run_is_refused_naming_its_new_owner_before_any_step_runs()
    {
        var s = await CreateAsync("""
            CREATE TABLE orders (id int PRIMARY KEY, note text); ALTER TABLE orders OWNER TO DB_OWNER;
            """);
        try
        {
            var engine = AsDbOwner(s);
            var plan = await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "orders") { Columns = new[] { "note" }, Name = "orders_note_ix" });
            // Between the plan (as its owner) and the run, the table is given to another role.
            await ExecuteAsync(Superuser(s), $"ALTER TABLE orders OWNER TO {s.TableOwner}");

            var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RunAsync(plan));

            Assert.Equal(ErrorIds.NotTableOwner, error.ErrorId);
            Assert.Contains($"its owner, \"{s.TableOwner}\"", error.Message, StringComparison.Ordinal);
            await using var connection = new NpgsqlConnection(Superuser(s));
            await connection.OpenAsync();
            await using var index = new NpgsqlCommand("SELECT to_regclass('public.orders_note_ix') IS NULL", connection);
            Assert.True((bool)(await index.ExecuteScalarAsync())!);
        }
        finally
        {
            await DropAsync(s);
        }
    }

    [Fact]
    public async Task A_backfill_by_a_role_without_update_on_the_table_is_refused_naming_the_grant_and_keeps_what_committed()
    {
        var s = await CreateAsync("""
            CREATE TABLE accounts (id int PRIMARY KEY, email text); ALTER TABLE accounts OWNER TO TABLE_OWNER;
            INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 500) g;
            """);
        try
        {
            // The superuser expands (it may alter the table); the database owner, whom the ledger
            // trusts, is then given the ledger but not the table, and runs the backfill.
            var superuser = EngineAs(Superuser(s));
            var expanded = await superuser.RunAsync(await superuser.PlanColumnRenameAsync(new ColumnRenameRequest("public", "accounts", "email", "email_address")));
            await ExecuteAsync(Superuser(s), $"GRANT USAGE ON SCHEMA zdt TO {s.DbOwner}; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA zdt TO {s.DbOwner}; GRANT SELECT ON accounts TO {s.DbOwner};");
            var engine = AsDbOwner(s);

            var error = await Assert.ThrowsAsync<ZdtException>(async () => await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id)));

            Assert.Equal(ErrorIds.InsufficientPrivilege, error.ErrorId);
            Assert.Contains($"GRANT SELECT, UPDATE ON \"public\".\"accounts\" TO {s.DbOwner}", error.Message, StringComparison.Ordinal);
            Assert.Equal(0L, (await superuser.GetMigrationAsync(expanded.Id)).RowsBackfilled);
        }
        finally
        {
            await DropAsync(s);
        }
    }
}
