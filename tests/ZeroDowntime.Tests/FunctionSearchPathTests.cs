using ZeroDowntime.Engine.Sql;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests;

/// <summary>The search_path the module's functions pin, so a caller's search_path cannot redirect their bodies.</summary>
public class FunctionSearchPathTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public FunctionSearchPathTests(TestDatabase db)
    {
        _db = db;
    }

    [Fact]
    public void The_clause_puts_pg_catalog_first_quotes_the_schemas_and_pg_temp_last()
        => Assert.Equal(
            "SET search_path = pg_catalog, \"public\", \"My Ext\", pg_temp",
            FunctionSearchPath.SetClause(new[] { "public", "pg_catalog", "My Ext", "public" }));

    [Fact]
    public async Task A_function_with_the_clause_ignores_a_callers_search_path_that_shadows_pg_catalog()
    {
        // The hijack: a schema listed before pg_catalog with its own lower(text).
        await _db.ExecuteAsync($$"""
            CREATE SCHEMA shadow;
            CREATE FUNCTION shadow.lower(text) RETURNS text LANGUAGE sql AS $$SELECT 'hijacked'$$;
            CREATE FUNCTION public.unpinned() RETURNS text LANGUAGE plpgsql AS $$BEGIN RETURN lower('X'); END$$;
            CREATE FUNCTION public.pinned() RETURNS text LANGUAGE plpgsql {{FunctionSearchPath.SetClause(Array.Empty<string>())}} AS $$BEGIN RETURN lower('X'); END$$;
            """);

        Assert.Equal("hijacked", await _db.ScalarAsync<string>("SET search_path = shadow, pg_catalog, public; SELECT public.unpinned()"));
        Assert.Equal("x", await _db.ScalarAsync<string>("SET search_path = shadow, pg_catalog, public; SELECT public.pinned()"));
    }

    [Fact]
    public async Task The_type_schemas_of_columns_include_domains_base_types_and_array_elements()
    {
        await _db.ExecuteAsync("""
            CREATE SCHEMA types_a; CREATE SCHEMA types_b; CREATE SCHEMA types_c;
            CREATE TYPE types_a.mood AS ENUM ('ok', 'sad');
            CREATE DOMAIN types_b.short_text AS text CHECK (length(VALUE) < 10);
            CREATE DOMAIN types_c.mood_d AS types_a.mood;
            CREATE TABLE typed (id int PRIMARY KEY, m types_a.mood, s types_b.short_text, ms types_a.mood[], d types_c.mood_d, t text);
            """);
        var oid = await _db.ScalarAsync<uint>("SELECT 'typed'::regclass::oid");
        await using var connection = await _db.OpenAsync();

        Assert.Equal(new[] { "types_a" }, await FunctionSearchPath.TypeSchemasAsync(connection, oid, new[] { "m", "ms", "t" }, CancellationToken.None));
        Assert.Equal(new[] { "types_b" }, await FunctionSearchPath.TypeSchemasAsync(connection, oid, new[] { "s" }, CancellationToken.None));
        Assert.Equal(new[] { "types_a", "types_c" }, (await FunctionSearchPath.TypeSchemasAsync(connection, oid, new[] { "d" }, CancellationToken.None)).Order());
        Assert.Empty(await FunctionSearchPath.TypeSchemasAsync(connection, oid, new[] { "id", "t" }, CancellationToken.None));
    }
}
