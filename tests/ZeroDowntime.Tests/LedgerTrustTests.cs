using System.Security.Cryptography;
using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// Issue 9, case 10: the ledger is created only by a role every later user can trust, and it is
/// checked before every use. The fixture connects as a superuser; the attackers are roles created
/// here with no more than CREATE on the database. Each test uses its own ledger schema.
/// </summary>
public class LedgerTrustTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public LedgerTrustTests(TestDatabase db)
    {
        _db = db;
    }

    private static string Unique(string prefix) => prefix + Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();

    // The fixture's server asks for a password over TCP.
    private const string Password = "zdt-trust-test";

    private async Task<string> CreateLoginRoleAsync(string prefix)
    {
        var role = Unique(prefix);
        await _db.ExecuteAsync($"CREATE ROLE {role} LOGIN PASSWORD '{Password}'; GRANT CREATE ON DATABASE \"{_db.DatabaseName}\" TO {role};");
        return role;
    }

    private string ConnectionStringFor(string role, string? database = null)
        => _db.Server.BuildConnectionString(database: database ?? _db.DatabaseName, username: role, password: Password);

    private static MigrationEngine EngineAs(string connectionString, string ledger)
        => new(ConnectionTarget.Resolve(connectionString), Engines.Fast with { LedgerSchema = ledger });

    private MigrationEngine SuperuserEngine(string ledger) => EngineAs(_db.ConnectionString, ledger);

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private Task<bool> SchemaExistsAsync(string schema)
        => _db.ScalarAsync<bool>($"SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = '{schema}')");

    private async Task CreateLedgerAsSuperuserAsync(string ledger, string table)
    {
        await _db.ExecuteAsync($"CREATE TABLE {table} (id int PRIMARY KEY, email text); INSERT INTO {table} SELECT g, 'u' || g FROM generate_series(1, 20) g;");
        var engine = SuperuserEngine(ledger);
        await engine.RunAsync(await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", table) { Columns = new[] { "id", "email" } }));
    }

    [Fact]
    public async Task A_ledger_left_owned_by_an_unprivileged_role_is_refused_and_its_trigger_never_runs_as_the_superuser()
    {
        // The state the earlier code left when a role with only CREATE on the database ran the
        // first command: the ledger schema and tables owned by that role. It then hangs a trigger
        // on the ledger that, run by a superuser, makes it a superuser and leaves a mark.
        var ledger = Unique("zdt_esc_");
        var mallory = await CreateLoginRoleAsync("zdt_mallory_");
        await CreateLedgerAsSuperuserAsync(ledger, "accounts_esc");
        await _db.ExecuteAsync($"""
            ALTER SCHEMA {ledger} OWNER TO {mallory};
            ALTER TABLE {ledger}.migration OWNER TO {mallory};
            ALTER TABLE {ledger}.migration_event OWNER TO {mallory};
            CREATE TABLE public.{mallory}_marks (who text);
            ALTER TABLE public.{mallory}_marks OWNER TO {mallory};
            """);
        await ExecuteAsync(ConnectionStringFor(mallory), $$"""
            CREATE FUNCTION {{ledger}}.hook() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN
              INSERT INTO public.{{mallory}}_marks VALUES (current_user);
              IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE 'ALTER ROLE {{mallory}} SUPERUSER';
              END IF;
              RETURN NEW;
            END $f$;
            CREATE TRIGGER hook BEFORE INSERT OR UPDATE ON {{ledger}}.migration FOR EACH ROW EXECUTE FUNCTION {{ledger}}.hook();
            CREATE TRIGGER hook BEFORE INSERT OR UPDATE ON {{ledger}}.migration_event FOR EACH ROW EXECUTE FUNCTION {{ledger}}.hook();
            """);

        var indexesBefore = await _db.ScalarAsync<int>("SELECT count(*) FROM pg_index WHERE indrelid = 'accounts_esc'::regclass");
        var engine = SuperuserEngine(ledger);
        var plan = await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "accounts_esc") { Columns = new[] { "email" } });
        var refused = await Assert.ThrowsAsync<ZdtException>(() => engine.RunAsync(plan));
        var listed = await Assert.ThrowsAsync<ZdtException>(() => engine.GetMigrationsAsync(new MigrationQuery()));

        Assert.Equal("LedgerNotTrusted", refused.ErrorId);
        Assert.Equal(ErrorKind.PermissionDenied, refused.Kind);
        Assert.Contains($"schema {ledger} is owned by {mallory}", refused.Message);
        Assert.Contains($"table {ledger}.migration is owned by {mallory}", refused.Message);
        Assert.Contains($"trigger hook on {ledger}.migration runs {ledger}.hook()", refused.Message);
        Assert.Equal("LedgerNotTrusted", listed.ErrorId);

        Assert.False(await _db.ScalarAsync<bool>($"SELECT rolsuper FROM pg_roles WHERE rolname = '{mallory}'"));
        Assert.Equal(0, await _db.ScalarAsync<int>($"SELECT count(*) FROM public.{mallory}_marks"));
        Assert.Equal(indexesBefore, await _db.ScalarAsync<int>("SELECT count(*) FROM pg_index WHERE indrelid = 'accounts_esc'::regclass"));
    }

    [Fact]
    public async Task A_role_with_only_create_on_the_database_cannot_create_the_ledger_even_for_its_own_table()
    {
        var ledger = Unique("zdt_own_");
        var mallory = await CreateLoginRoleAsync("zdt_mallory_");
        await ExecuteAsync(ConnectionStringFor(mallory), $"CREATE SCHEMA {mallory}; CREATE TABLE {mallory}.t (id int PRIMARY KEY, a text);");
        var engine = EngineAs(ConnectionStringFor(mallory), ledger);

        var plan = await engine.PlanColumnRenameAsync(new ColumnRenameRequest(mallory, "t", "a", "b"));
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RunAsync(plan));

        Assert.Equal("LedgerCreationRefused", error.ErrorId);
        Assert.Contains("superuser or the database owner", error.Message);
        Assert.False(await SchemaExistsAsync(ledger));
        Assert.Equal(0, await _db.ScalarAsync<int>($"SELECT count(*) FROM pg_attribute WHERE attrelid = '{mallory}.t'::regclass AND attname = 'b'"));
    }

    [Fact]
    public async Task A_schema_of_the_ledgers_name_made_beforehand_by_another_role_is_refused_not_filled()
    {
        var ledger = Unique("zdt_pre_");
        var mallory = await CreateLoginRoleAsync("zdt_mallory_");
        await ExecuteAsync(ConnectionStringFor(mallory), $"CREATE SCHEMA {ledger};");
        await _db.ExecuteAsync("CREATE TABLE pre_t (id int PRIMARY KEY, a text)");
        var engine = SuperuserEngine(ledger);

        var plan = await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "pre_t") { Columns = new[] { "a" } });
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.RunAsync(plan));

        Assert.Equal("LedgerNotTrusted", error.ErrorId);
        Assert.Contains($"schema {ledger} is owned by {mallory}", error.Message);
        Assert.Null(await _db.ScalarAsync<string>($"SELECT to_regclass('{ledger}.migration')::text"));
    }

    [Fact]
    public async Task A_role_that_cannot_alter_the_table_is_refused_at_planning_before_anything_is_created()
    {
        var ledger = Unique("zdt_na_");
        var mallory = await CreateLoginRoleAsync("zdt_mallory_");
        await _db.ExecuteAsync("CREATE TABLE not_hers (id int PRIMARY KEY, email text); GRANT SELECT ON not_hers TO PUBLIC;");
        var engine = EngineAs(ConnectionStringFor(mallory), ledger);

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "not_hers", "email", "mail")));

        Assert.Equal("NotTableOwner", error.ErrorId);
        Assert.Contains(mallory, error.Message);
        Assert.False(await SchemaExistsAsync(ledger));
    }

    [Fact]
    public async Task Reading_and_planning_never_create_the_ledger()
    {
        var ledger = Unique("zdt_ro_");
        await _db.ExecuteAsync("CREATE TABLE ro_t (id int PRIMARY KEY, a text)");
        var engine = SuperuserEngine(ledger);

        Assert.Empty(await engine.GetMigrationsAsync(new MigrationQuery()));
        await Assert.ThrowsAsync<ZdtException>(() => engine.GetMigrationAsync(1));
        await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "ro_t", "a", "b"));
        await engine.PlanCreateIndexAsync(new CreateIndexRequest("public", "ro_t") { Columns = new[] { "a" } });

        Assert.False(await SchemaExistsAsync(ledger));
    }

    public static TheoryData<string, string> ForeignObjects => new()
    {
        // {0} is the ledger schema, {1} a role that is neither a superuser nor the database owner.
        { "CREATE FUNCTION {0}.helper() RETURNS int LANGUAGE sql AS 'SELECT 1'; ALTER FUNCTION {0}.helper() OWNER TO {1};", "function {0}.helper() is owned by {1}" },
        { "CREATE TABLE {0}.extra (x int); ALTER TABLE {0}.extra OWNER TO {1};", "table {0}.extra is owned by {1}" },
        { "CREATE FUNCTION public.{1}_f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; CREATE TRIGGER t AFTER INSERT ON {0}.migration_event FOR EACH ROW EXECUTE FUNCTION public.{1}_f();", "trigger t on {0}.migration_event runs {1}_f()" },
        { "CREATE FUNCTION public.{1}_d() RETURNS text LANGUAGE sql AS 'SELECT 1::text'; ALTER FUNCTION public.{1}_d() OWNER TO {1}; ALTER TABLE {0}.migration_event ALTER COLUMN message SET DEFAULT public.{1}_d();", "function {1}_d() (used by a default, constraint or index there) is owned by {1}" },
        { "CREATE POLICY p ON {0}.migration USING (true);", "policy p on {0}.migration" },
        { "CREATE RULE r AS ON INSERT TO {0}.migration_event DO ALSO NOTIFY zdt;", "rule r on {0}.migration_event" },
        { "GRANT UPDATE ON {0}.migration TO {1};", "UPDATE on {0}.migration is granted to {1}" },
        { "GRANT INSERT ON {0}.migration_event TO PUBLIC;", "INSERT on {0}.migration_event is granted to PUBLIC" },
        { "GRANT UPDATE (spec) ON {0}.migration TO {1};", "UPDATE on column {0}.migration.spec is granted to {1}" },
        { "CREATE FUNCTION {0}.tf() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; ALTER FUNCTION {0}.tf() OWNER TO {1}; CREATE TABLE public.{1}_su (x int); CREATE TRIGGER tr BEFORE INSERT ON public.{1}_su FOR EACH ROW EXECUTE FUNCTION {0}.tf();", "function {0}.tf() is owned by {1}" },
    };

    [Theory]
    [MemberData(nameof(ForeignObjects))]
    public async Task A_ledger_with_anything_not_ours_or_not_trusted_is_refused_with_what_was_found(string setup, string expected)
    {
        var ledger = Unique("zdt_fo_");
        var table = Unique("fo_t_");
        var role = await CreateLoginRoleAsync("zdt_other_");
        await CreateLedgerAsSuperuserAsync(ledger, table);
        var engine = SuperuserEngine(ledger);
        Assert.Single(await engine.GetMigrationsAsync(new MigrationQuery()));

        await _db.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, setup, ledger, role));
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.GetMigrationsAsync(new MigrationQuery()));

        Assert.Equal("LedgerNotTrusted", error.ErrorId);
        Assert.Contains(string.Format(System.Globalization.CultureInfo.InvariantCulture, expected, ledger, role), error.Message);
        Assert.Contains("Nothing was changed", error.Message);
    }

    [Fact]
    public async Task The_database_owner_or_a_member_of_it_creates_a_ledger_owned_by_the_database_owner_that_superusers_accept()
    {
        var owner = Unique("zdt_dbowner_");
        var member = Unique("zdt_member_");
        var database = Unique("zdt_t_owned_");
        await _db.ExecuteAsync($"CREATE ROLE {owner} LOGIN PASSWORD '{Password}'; CREATE ROLE {member} LOGIN PASSWORD '{Password}' IN ROLE {owner};");
        await _db.ExecuteAsync($"CREATE DATABASE {database} OWNER {owner} TEMPLATE template0");
        try
        {
            await ExecuteAsync(ConnectionStringFor(owner, database), "CREATE TABLE t (id int PRIMARY KEY, a text); CREATE TABLE u (id int PRIMARY KEY, a text);");

            var asOwner = EngineAs(ConnectionStringFor(owner, database), "zdt");
            await asOwner.RunAsync(await asOwner.PlanCreateIndexAsync(new CreateIndexRequest("public", "t") { Columns = new[] { "a" } }));
            var asMember = EngineAs(ConnectionStringFor(member, database), "zdt_second");
            await asMember.RunAsync(await asMember.PlanCreateIndexAsync(new CreateIndexRequest("public", "u") { Columns = new[] { "a" } }));

            await using var superuser = new NpgsqlConnection(_db.Server.BuildConnectionString(database: database));
            await superuser.OpenAsync();
            await using var owners = new NpgsqlCommand(
                "SELECT string_agg(DISTINCT n.nspowner::regrole::text, ',') FROM pg_namespace n WHERE n.nspname IN ('zdt', 'zdt_second')", superuser);
            Assert.Equal(owner, await owners.ExecuteScalarAsync());
            await using var tables = new NpgsqlCommand(
                "SELECT string_agg(DISTINCT c.relowner::regrole::text, ',') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('zdt', 'zdt_second')", superuser);
            Assert.Equal(owner, await tables.ExecuteScalarAsync());

            var asSuperuser = EngineAs(_db.Server.BuildConnectionString(database: database), "zdt");
            Assert.Single(await asSuperuser.GetMigrationsAsync(new MigrationQuery()));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await _db.ExecuteAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
        }
    }

    [Fact]
    public async Task A_version_schema_that_carries_our_marker_but_belongs_to_another_role_is_refused()
    {
        var ledger = Unique("zdt_vs_");
        var version = Unique("app_v_");
        var mallory = await CreateLoginRoleAsync("zdt_mallory_");
        await _db.ExecuteAsync("CREATE TABLE vs_t (id int PRIMARY KEY, a text)");
        // Anyone with CREATE on the database can write the marker we recognise our schemas by.
        await ExecuteAsync(ConnectionStringFor(mallory), $"CREATE SCHEMA {version}; COMMENT ON SCHEMA {version} IS 'ZeroDowntime version schema: made by someone else';");
        var engine = SuperuserEngine(ledger);

        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanColumnRenameAsync(
            new ColumnRenameRequest("public", "vs_t", "a", "b") { Strategy = RenameStrategy.View, VersionSchema = version }));

        Assert.Equal("UntrustedObject", error.ErrorId);
        Assert.Contains($"schema {version} is owned by {mallory}", error.Message);
    }

    [Fact]
    public async Task A_version_schema_whose_views_belong_to_their_tables_owner_is_used_and_contracted()
    {
        // The superuser renames columns of two tables of a non-superuser owner into one version
        // schema: the views belong to the tables' owner by design, and that is trusted.
        var ledger = Unique("zdt_vo_");
        var version = Unique("app_v_");
        var owner = await CreateLoginRoleAsync("zdt_appowner_");
        await _db.ExecuteAsync($"CREATE TABLE vo_a (id int PRIMARY KEY, a text); CREATE TABLE vo_b (id int PRIMARY KEY, a text); ALTER TABLE vo_a OWNER TO {owner}; ALTER TABLE vo_b OWNER TO {owner};");
        var engine = SuperuserEngine(ledger);

        var first = await engine.RunAsync(await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "vo_a", "a", "x") { Strategy = RenameStrategy.View, VersionSchema = version }));
        var second = await engine.RunAsync(await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "vo_b", "a", "x") { Strategy = RenameStrategy.View, VersionSchema = version }));
        Assert.Equal(owner, await _db.ScalarAsync<string>($"SELECT relowner::regrole::text FROM pg_class WHERE oid = '{version}.vo_a'::regclass"));

        await engine.CompleteAsync(first.Id);
        await engine.CompleteAsync(second.Id);
        Assert.False(await SchemaExistsAsync(version));
    }

    [Fact]
    public async Task A_sync_function_in_the_ledger_owned_by_the_owner_of_the_table_it_serves_is_accepted()
    {
        // What a rename run by a table's owner (or a member of it) leaves in the ledger until the
        // contract: its trigger function, owned by that role, fired only by that role's table.
        var ledger = Unique("zdt_sf_");
        var table = Unique("sf_t_");
        var owner = await CreateLoginRoleAsync("zdt_tableowner_");
        await CreateLedgerAsSuperuserAsync(ledger, table);
        await _db.ExecuteAsync($"""
            CREATE FUNCTION {ledger}.sync_x() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
            ALTER FUNCTION {ledger}.sync_x() OWNER TO {owner};
            ALTER TABLE {table} OWNER TO {owner};
            CREATE TRIGGER zz_sync BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {ledger}.sync_x();
            """);

        Assert.Single(await SuperuserEngine(ledger).GetMigrationsAsync(new MigrationQuery()));
    }
}
