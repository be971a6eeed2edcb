using System.Security.Cryptography;
using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Sql;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// Issue 9, case 11: literals the module writes into DDL mean the same text whatever
/// standard_conforming_strings is, and the module's own sessions run with it on even where the
/// database or the role turns it off.
/// </summary>
public class LiteralTests : IClassFixture<TestDatabase>
{
    // The comment of repro 08: with standard_conforming_strings off, '...\'' ends the literal
    // one quote later than it was meant to, and the rest runs as SQL.
    private const string InjectingComment = "x\\'; DROP TABLE victim; --";

    private const string Password = "zdt-literal-test";

    public static TheoryData<string> Values => new()
    {
        "",
        "plain",
        "it's",
        "a \\ backslash",
        "\\",
        "\\'",
        "ends with a backslash \\",
        InjectingComment,
        "x\\\\'; SELECT 1; --",
        "$$ dollar $zdt$ quotes $",
        "E'not an escape string'",
        "\\n is not a newline, \\x41 is not A, \\u0041 is not A",
        "a real\nnewline and a tab\t and ünïcødé ✓",
    };

    private readonly TestDatabase _db;

    public LiteralTests(TestDatabase db)
    {
        _db = db;
    }

    [Theory]
    [MemberData(nameof(Values))]
    public async Task A_literal_reads_back_byte_exact_with_standard_conforming_strings_on_and_off(string value)
    {
        await using var connection = await _db.OpenAsync();
        foreach (var setting in new[] { "on", "off" })
        {
            await using (var set = new NpgsqlCommand($"SET standard_conforming_strings = {setting}", connection))
            {
                await set.ExecuteNonQueryAsync();
            }

            await using var select = new NpgsqlCommand($"SELECT {Ident.Literal(value)}", connection);
            Assert.Equal(value, await select.ExecuteScalarAsync());
        }
    }

    [Theory]
    [MemberData(nameof(Values))]
    public async Task A_literal_in_a_plpgsql_body_compiled_with_the_setting_off_reads_back_byte_exact(string value)
    {
        // Trigger function bodies are compiled in the application's sessions, with its settings.
        var function = "lit_" + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
        await _db.ExecuteAsync($"CREATE FUNCTION {function}() RETURNS text LANGUAGE plpgsql AS $zdt_body$BEGIN RETURN {Ident.Literal(value)}; END$zdt_body$");
        await using var connection = await _db.OpenAsync();
        await using var call = new NpgsqlCommand($"SET standard_conforming_strings = off; SELECT {function}()", connection);
        Assert.Equal(value, await call.ExecuteScalarAsync());
    }

    [Theory]
    [InlineData("plain", "'plain'")]
    [InlineData("it's", "'it''s'")]
    [InlineData("a \\ b", "E'a \\\\ b'")]
    [InlineData("x\\'; DROP", "E'x\\\\''; DROP'")]
    [InlineData("$$", "'$$'")]
    public void Only_a_value_with_a_backslash_becomes_an_escape_string(string value, string expected)
        => Assert.Equal(expected, Ident.Literal(value));

    [Fact]
    public async Task The_modules_sessions_have_standard_conforming_strings_on_whatever_the_role_and_the_options_say()
    {
        var role = "zdt_scs_off_" + Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();
        await _db.ExecuteAsync($"CREATE ROLE {role} LOGIN PASSWORD '{Password}'; ALTER ROLE {role} SET standard_conforming_strings = off;");
        var builder = new NpgsqlConnectionStringBuilder(_db.Server.BuildConnectionString(database: _db.DatabaseName, username: role, password: Password))
        {
            Options = "-c standard_conforming_strings=off -c lock_timeout=4321",
        };
        var target = ConnectionTarget.Resolve(builder.ConnectionString);

        await using var connection = await target.OpenAsync(CancellationToken.None);
        await using var show = new NpgsqlCommand("SELECT current_setting('standard_conforming_strings'), current_setting('lock_timeout')", connection);
        await using var reader = await show.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("on", reader.GetString(0));
        Assert.Equal("4321ms", reader.GetString(1));
        // The user's settings are shown and passed on as given.
        Assert.Equal("-c standard_conforming_strings=off -c lock_timeout=4321", target.CreateBuilder().Options);
    }

    [Fact]
    public async Task A_comment_that_would_inject_sql_with_the_setting_off_for_the_role_is_copied_byte_exact()
    {
        var role = "zdt_scs_role_" + Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();
        await _db.ExecuteAsync($"""
            CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{Password}';
            ALTER ROLE {role} SET standard_conforming_strings = off;
            CREATE TABLE t_role (id int PRIMARY KEY, a text);
            CREATE TABLE victim_role (x int);
            COMMENT ON COLUMN t_role.a IS {Ident.Literal(InjectingComment.Replace("victim", "victim_role", StringComparison.Ordinal))};
            """);
        var engine = new MigrationEngine(
            ConnectionTarget.Resolve(_db.Server.BuildConnectionString(database: _db.DatabaseName, username: role, password: Password)),
            Engines.Fast);

        await engine.RenameColumnAsync("t_role", "a", "b");

        Assert.NotNull(await _db.ScalarAsync<string>("SELECT to_regclass('victim_role')::text"));
        Assert.Equal(
            InjectingComment.Replace("victim", "victim_role", StringComparison.Ordinal),
            await _db.ScalarAsync<string>("SELECT col_description('t_role'::regclass, (SELECT attnum FROM pg_attribute WHERE attrelid = 't_role'::regclass AND attname = 'b'))"));
    }

    [Fact]
    public async Task A_comment_that_would_inject_sql_with_the_setting_off_for_the_database_is_copied_byte_exact()
    {
        var database = "zdt_t_scs_" + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
        await _db.ExecuteAsync($"CREATE DATABASE {database} TEMPLATE template0; ALTER DATABASE {database} SET standard_conforming_strings = off;");
        var connectionString = _db.Server.BuildConnectionString(database: database);
        try
        {
            await using (var connection = new NpgsqlConnection(connectionString))
            {
                await connection.OpenAsync();
                // Written by hand (an escape string reads the same with either setting), so the
                // setup does not depend on the code under test.
                await using var setup = new NpgsqlCommand(
                    """CREATE TABLE t (id int PRIMARY KEY, a text); CREATE TABLE victim (x int); COMMENT ON COLUMN t.a IS E'x\\''; DROP TABLE victim; --';""",
                    connection);
                await setup.ExecuteNonQueryAsync();
            }

            var engine = new MigrationEngine(ConnectionTarget.Resolve(connectionString), Engines.Fast);
            await engine.RenameColumnAsync("t", "a", "b");

            await using (var connection = new NpgsqlConnection(connectionString))
            {
                await connection.OpenAsync();
                await using var check = new NpgsqlCommand(
                    "SELECT to_regclass('victim') IS NOT NULL, col_description('t'::regclass, (SELECT attnum FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'b')), current_setting('standard_conforming_strings')",
                    connection);
                await using var reader = await check.ExecuteReaderAsync();
                Assert.True(await reader.ReadAsync());
                Assert.Equal("off", reader.GetString(2));
                Assert.True(reader.GetBoolean(0), "the table victim was dropped");
                Assert.Equal(InjectingComment, reader.GetString(1));
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await _db.ExecuteAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
        }
    }
}
