using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// The end state is what the plain DDL gives: <c>pg_dump --schema-only --table</c> of a table
/// changed by the module equals that of a twin changed by the plain statement (generated names
/// normalised, <see cref="PgDumpShape"/>). The table carries every kind of object PostgreSQL 15
/// lets depend on a column that the operations carry: default, NOT NULL, collation, comment,
/// statistics target, storage, compression, attribute options, column grants, a CHECK, a foreign
/// key, UNIQUE constraints (plain and deferrable), unique, partial, expression, INCLUDE, hash and
/// NULLS NOT DISTINCT indexes, an index comment, the CLUSTER mark, REPLICA IDENTITY USING INDEX,
/// and extended statistics (on columns and on an expression, with a target and a comment).
/// </summary>
public class EndStateTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public EndStateTests(TestDatabase db)
    {
        _db = db;
    }

    private async Task CreateRichTableAsync(string schema, int rows = 300)
    {
        // Each server gets every kind of dependent it has: column compression and expression statistics
        // exist from PostgreSQL 14, NULLS NOT DISTINCT from 15.
        var version = _db.Server.MajorVersion;
        var compression = version >= 14 ? $"ALTER TABLE {schema}.orders ALTER COLUMN address SET COMPRESSION pglz;" : "";
        var nullsNotDistinct = version >= 15 ? $"CREATE UNIQUE INDEX orders_address_note_nnd ON {schema}.orders (address, note) NULLS NOT DISTINCT;" : "";
        var expressionStatistics = version >= 14 ? $"CREATE STATISTICS {schema}.orders_expr_stats ON (lower(address)), qty FROM {schema}.orders;" : "";
        await _db.ExecuteAsync($"""
            DO $$ BEGIN CREATE ROLE zdt_endstate_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
            CREATE TABLE IF NOT EXISTS public.endstate_ref (address text COLLATE "C" PRIMARY KEY);
            INSERT INTO public.endstate_ref SELECT 'addr-' || g FROM generate_series(1, {rows}) g ON CONFLICT DO NOTHING;
            CREATE SCHEMA {schema};
            CREATE SEQUENCE {schema}.orders_ticket_seq;
            CREATE TABLE {schema}.orders (
                id bigint PRIMARY KEY,
                code text NOT NULL,
                address text COLLATE "C" NOT NULL DEFAULT 'addr-1' CHECK (address <> ''),
                qty int NOT NULL DEFAULT 1,
                ticket bigint NOT NULL DEFAULT nextval('{schema}.orders_ticket_seq'),
                note text,
                CONSTRAINT orders_address_fkey FOREIGN KEY (address) REFERENCES public.endstate_ref (address),
                CONSTRAINT orders_code_address_key UNIQUE (code, address),
                CONSTRAINT orders_address_qty_key UNIQUE (address, qty) DEFERRABLE INITIALLY DEFERRED);
            ALTER SEQUENCE {schema}.orders_ticket_seq OWNED BY {schema}.orders.ticket;
            COMMENT ON COLUMN {schema}.orders.address IS 'where it goes';
            ALTER TABLE {schema}.orders ALTER COLUMN address SET STATISTICS 300;
            ALTER TABLE {schema}.orders ALTER COLUMN address SET STORAGE EXTERNAL;
            {compression}
            ALTER TABLE {schema}.orders ALTER COLUMN address SET (n_distinct = 150);
            GRANT SELECT (address, code), UPDATE (address) ON {schema}.orders TO zdt_endstate_reader;
            CREATE UNIQUE INDEX orders_address_uidx ON {schema}.orders (address);
            COMMENT ON INDEX {schema}.orders_address_uidx IS 'the natural key';
            ALTER TABLE {schema}.orders REPLICA IDENTITY USING INDEX orders_address_uidx;
            ALTER TABLE {schema}.orders CLUSTER ON orders_address_uidx;
            CREATE INDEX orders_lower_address ON {schema}.orders (lower(address)) WHERE qty > 10;
            CREATE INDEX orders_qty_incl ON {schema}.orders (qty) INCLUDE (address);
            CREATE INDEX orders_address_hash ON {schema}.orders USING hash (address);
            {nullsNotDistinct}
            CREATE UNIQUE INDEX orders_ticket_key ON {schema}.orders (ticket);
            CREATE STATISTICS {schema}.orders_address_stats (ndistinct, dependencies) ON address, qty FROM {schema}.orders;
            ALTER STATISTICS {schema}.orders_address_stats SET STATISTICS 200;
            COMMENT ON STATISTICS {schema}.orders_address_stats IS 'address and qty go together';
            {expressionStatistics}
            INSERT INTO {schema}.orders (id, code, address, qty, note)
                SELECT g, 'c' || g, 'addr-' || g, g % 20 + 1, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, {rows}) g;
            """);
    }

    private async Task AssertSameDumpAsync(string migrated, string twin, string table, Func<string, string>? names = null)
    {
        var expected = await PgDumpShape.OfAsync(_db, twin, table, names);
        var actual = await PgDumpShape.OfAsync(_db, migrated, table, names);

        // The comparison covers what the copy used to lose.
        var carriedKinds = new List<string> { "REPLICA IDENTITY USING INDEX", "CLUSTER ON", "COMMENT ON INDEX", "CREATE STATISTICS", "COMMENT ON STATISTICS", "UNIQUE (code,", "DEFERRABLE INITIALLY DEFERRED", "SET STORAGE EXTERNAL", "n_distinct=150", "GRANT SELECT(" };
        if (_db.Server.MajorVersion >= 15)
        {
            carriedKinds.Add("NULLS NOT DISTINCT");
        }

        foreach (var carried in carriedKinds)
        {
            Assert.Contains(carried, expected, StringComparison.Ordinal);
        }

        // A failure names the lines that differ.
        var twinOnly = expected.Split('\n').Except(actual.Split('\n')).ToList();
        var migratedOnly = actual.Split('\n').Except(expected.Split('\n')).ToList();
        Assert.True(expected == actual, $"Only in the plain DDL's twin:\n{string.Join("\n", twinOnly)}\nOnly in the migrated table:\n{string.Join("\n", migratedOnly)}");
    }

    [Theory]
    [InlineData("address", "billing")]
    [InlineData("ticket", "serial_no")]
    public async Task Column_rename_by_copy_ends_as_the_plain_RENAME_COLUMN_does(string column, string newName)
    {
        var (migrated, twin) = ($"es_copy_{column}", $"es_copy_{column}_twin");
        await CreateRichTableAsync(migrated);
        await CreateRichTableAsync(twin);
        await _db.ExecuteAsync($"ALTER TABLE {twin}.orders RENAME COLUMN {column} TO {newName}");
        var engine = Engines.For(_db);

        var migration = await engine.RenameColumnUpToVerifiedAsync("orders", column, newName, migrated);
        var completed = await engine.CompleteAsync(migration.Id);

        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        await AssertSameDumpAsync(migrated, twin, "orders", PgDumpShape.ColumnInNames(column, newName));
    }

    [Fact]
    public async Task Column_rename_by_view_ends_as_the_plain_RENAME_COLUMN_does()
    {
        await CreateRichTableAsync("es_view");
        await CreateRichTableAsync("es_view_twin");
        await _db.ExecuteAsync("ALTER TABLE es_view_twin.orders RENAME COLUMN address TO billing");
        var engine = Engines.For(_db);

        await engine.RenameColumnByViewAsync("orders", "address", "billing", "es_view_v2", "es_view");
        await engine.CompleteVersionAsync("es_view_v2");

        await AssertSameDumpAsync("es_view", "es_view_twin", "orders");
    }

    [Fact]
    public async Task Table_rename_ends_as_the_plain_RENAME_does()
    {
        await CreateRichTableAsync("es_table");
        await CreateRichTableAsync("es_table_twin");
        await _db.ExecuteAsync("ALTER TABLE es_table_twin.orders RENAME TO purchases");
        var engine = Engines.For(_db);

        var migration = await engine.RenameTableAsync("orders", "purchases", "es_table");
        await engine.CompleteAsync(migration.Id);

        await AssertSameDumpAsync("es_table", "es_table_twin", "purchases");
    }

    [Theory]
    [InlineData("es_add_volatile", "token", "uuid", "gen_random_uuid()", true)]
    [InlineData("es_add_constant", "flag", "text", "'new'", false)]
    public async Task Add_column_ends_as_the_plain_ADD_COLUMN_does(string schema, string column, string type, string @default, bool notNull)
    {
        await CreateRichTableAsync(schema);
        await CreateRichTableAsync(schema + "_twin");
        await _db.ExecuteAsync($"ALTER TABLE {schema}_twin.orders ADD COLUMN {column} {type} DEFAULT {@default}{(notNull ? " NOT NULL" : "")}");
        var engine = Engines.For(_db);

        var migration = await engine.RunAsync(await engine.PlanAddColumnAsync(new AddColumnRequest(schema, "orders", column, type, @default, notNull)));
        if (migration.Phase != MigrationPhase.Completed)
        {
            if (migration.Phase == MigrationPhase.Expanded && migration.Strategy == "Backfill")
            {
                await engine.BackfillAsync(migration.Id);
            }

            await engine.CompleteAsync(migration.Id);
        }

        await AssertSameDumpAsync(schema, schema + "_twin", "orders");
    }

    [Fact]
    public async Task Set_column_not_null_ends_as_the_plain_SET_NOT_NULL_does()
    {
        await CreateRichTableAsync("es_notnull");
        await CreateRichTableAsync("es_notnull_twin");
        await _db.ExecuteAsync("""
            UPDATE es_notnull.orders SET note = 'x' WHERE note IS NULL;
            UPDATE es_notnull_twin.orders SET note = 'x' WHERE note IS NULL;
            ALTER TABLE es_notnull_twin.orders ALTER COLUMN note SET NOT NULL;
            """);
        var engine = Engines.For(_db);

        var migration = await engine.RunAsync(await engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("es_notnull", "orders", "note")));
        await engine.CompleteAsync(migration.Id);

        await AssertSameDumpAsync("es_notnull", "es_notnull_twin", "orders");
    }
}
