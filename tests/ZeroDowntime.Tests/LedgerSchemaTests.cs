using System.Security.Cryptography;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// A ledger made by the first release is brought to this module's shape on first use by its
/// owner, ends exactly like a new one, and is refused with a clear error to anyone who cannot
/// upgrade it. Each test uses its own ledger schemas.
/// </summary>
public class LedgerSchemaTests : IClassFixture<TestDatabase>
{
    private const string Password = "zdt-ledger-schema-test";
    private readonly TestDatabase _db;

    public LedgerSchemaTests(TestDatabase db)
    {
        _db = db;
    }

    private static string Unique(string prefix) => prefix + Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();

    private MigrationEngine Engine(string ledger, string? connectionString = null)
        => new(ConnectionTarget.Resolve(connectionString ?? _db.ConnectionString), Engines.Fast with { LedgerSchema = ledger });

    /// <summary>What the first release left in a database: version 1's tables with one migration recorded.</summary>
    private async Task CreateVersion1LedgerAsync(string ledger)
    {
        var names = LedgerSchema.For(ledger);
        await _db.ExecuteAsync(LedgerSchema.Version1Sql(names) + LedgerSchema.VersionCommentSql(names, 1) + $"""
            INSERT INTO {names.Migration} (operation, schema_name, table_name, table_oid, strategy, phase, spec)
            VALUES ('create-index', 'public', 'gone', 0, 'one-shot', 'completed', '{"{}"}');
            """);
    }

    private async Task<string> ShapeAsync(string ledger)
        => (await _db.ScalarAsync<string>($"""
            SELECT string_agg(c.relname || '.' || coalesce(a.attname, '') || ':' || coalesce(format_type(a.atttypid, a.atttypmod), '') || ':' || a.attnotnull::text
                              || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ':' || coalesce(pg_get_indexdef(i.indexrelid), ''), E'\n' ORDER BY c.relname, a.attnum)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = '{ledger}'
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            LEFT JOIN pg_index i ON i.indexrelid = c.oid
            """))!.Replace(ledger, "LEDGER", StringComparison.Ordinal);

    private async Task<string> CommentAsync(string ledger)
        => (await _db.ScalarAsync<string>($"SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = '{ledger}'"))!;

    [Fact]
    public async Task A_first_release_ledger_is_upgraded_on_first_use_to_exactly_the_shape_of_a_new_one_and_keeps_its_rows()
    {
        Assert.True(LedgerSchema.CurrentVersion > 1, "this test needs at least one upgrade step to be meaningful");
        var old = Unique("zdt_old_");
        var fresh = Unique("zdt_new_");
        await CreateVersion1LedgerAsync(old);
        await _db.ExecuteAsync("CREATE TABLE IF NOT EXISTS ledger_schema_t (id int PRIMARY KEY, v text)");
        var engine = Engine(fresh);
        await engine.RunAsync(await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "ledger_schema_t") { Columns = new[] { "v" }, Name = Unique("ledger_schema_ix_") }));

        var migrations = await Engine(old).GetMigrationsAsync(new MigrationQuery());

        Assert.Single(migrations);
        Assert.Equal(await ShapeAsync(fresh), await ShapeAsync(old));
        Assert.Contains($"(version {LedgerSchema.CurrentVersion})", await CommentAsync(old), StringComparison.Ordinal);
        Assert.Equal(await CommentAsync(fresh), await CommentAsync(old));
    }

    [Fact]
    public async Task A_role_that_does_not_own_an_old_ledger_is_told_who_can_upgrade_it_and_nothing_changes()
    {
        var old = Unique("zdt_old_");
        await CreateVersion1LedgerAsync(old);
        var reader = Unique("zdt_reader_");
        await _db.ExecuteAsync($"CREATE ROLE {reader} LOGIN PASSWORD '{Password}'; GRANT USAGE ON SCHEMA {old} TO {reader}; GRANT SELECT ON ALL TABLES IN SCHEMA {old} TO {reader};");
        var before = await ShapeAsync(old);

        var error = await Assert.ThrowsAsync<ZdtException>(() => Engine(old, _db.Server.BuildConnectionString(database: _db.DatabaseName, username: reader, password: Password)).GetMigrationsAsync(new MigrationQuery()));

        Assert.Equal(ErrorIds.LedgerOutdated, error.ErrorId);
        Assert.Contains("version 1", error.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, await ShapeAsync(old));
        Assert.Contains("(version 1)", await CommentAsync(old), StringComparison.Ordinal);
    }
}
