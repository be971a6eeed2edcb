using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// What already worked on partitioned tables, now tested on two levels with a default partition:
/// a column rename by view, a table rename behind a view, an instant Add-Column.
/// </summary>
public class PartitionedRenameTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public PartitionedRenameTests(TestDatabase db)
    {
        _db = db;
    }

    private Task<string?> ColumnsAsync(string tree) => _db.ScalarAsync<string>($"""
        SELECT string_agg(replace(t.relid::regclass::text, '{tree}', 'T') || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
                          || COALESCE(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), E'\n' ORDER BY t.relid::regclass::text, a.attnum)
        FROM pg_partition_tree('{tree}') t
        JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        """);

    [Fact]
    public async Task A_column_rename_by_view_writes_through_every_level_and_ends_as_the_plain_rename_on_a_twin()
    {
        await PartitionedTrees.CreateAsync(_db, "prv_a");
        await PartitionedTrees.CreateAsync(_db, "prv_b");
        var engine = Engines.For(_db);

        var migration = await engine.RenameColumnByViewAsync("prv_a", "qty", "quantity", "prv_v1");
        Assert.Equal(MigrationPhase.Expanded, migration.Phase);

        // The new version writes through the view into a sub-partition; the old one the table.
        await _db.ExecuteAsync("INSERT INTO prv_v1.prv_a (id, created, region, quantity) VALUES (90001, '2022-05-01', 'eu', 7)");
        await _db.ExecuteAsync("INSERT INTO prv_a (id, created, region, qty) VALUES (90002, '2030-01-01', 'us', 8)");
        Assert.Equal(7, await _db.ScalarAsync<int>("SELECT qty FROM prv_a_2022_eu WHERE id = 90001"));
        Assert.Equal(8, await _db.ScalarAsync<int>("SELECT quantity FROM prv_v1.prv_a WHERE id = 90002"));

        await engine.CompleteVersionAsync("prv_v1");
        await _db.ExecuteAsync("ALTER TABLE prv_b RENAME COLUMN qty TO quantity");

        Assert.Equal(await ColumnsAsync("prv_b"), await ColumnsAsync("prv_a"));
        Assert.Equal(7, await _db.ScalarAsync<int>("SELECT quantity FROM prv_a_2022_eu WHERE id = 90001"));
    }

    [Fact]
    public async Task A_two_level_table_is_renamed_behind_a_view_and_an_instant_column_reaches_every_partition()
    {
        await PartitionedTrees.CreateAsync(_db, "prt_a");
        await PartitionedTrees.CreateAsync(_db, "prt_b");
        var engine = Engines.For(_db);

        var added = await engine.RunAsync(await engine.PlanAddColumnAsync(new AddColumnRequest("public", "prt_a", "source", "text", "'web'", NotNull: true)));
        await engine.CompleteAsync(added.Id);
        await _db.ExecuteAsync("ALTER TABLE prt_b ADD COLUMN source text NOT NULL DEFAULT 'web'");
        Assert.Equal("Instant", added.Strategy);
        Assert.Equal(await ColumnsAsync("prt_b"), await ColumnsAsync("prt_a"));

        var renamed = await engine.RenameTableAsync("prt_a", "prt_a_new");
        await _db.ExecuteAsync("INSERT INTO prt_a (id, created, region, qty) VALUES (90003, '2022-07-01', 'fr', 3)");
        Assert.Equal("web", await _db.ScalarAsync<string>("SELECT source FROM prt_a_2022_other WHERE id = 90003"));
        var completed = await engine.CompleteAsync(renamed.Id);

        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(2001L, await _db.ScalarAsync<long>("SELECT count(*) FROM prt_a_new"));
        Assert.Null(await _db.ScalarAsync<string>("SELECT to_regclass('public.prt_a')::text"));
    }
}
