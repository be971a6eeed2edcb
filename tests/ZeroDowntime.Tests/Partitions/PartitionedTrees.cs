using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>Partitioned tables for the tests: range by year, one year sub-partitioned by list, a default partition.</summary>
public static class PartitionedTrees
{
    /// <summary>
    /// {name} partitioned by RANGE (created): {name}_2020, {name}_2021, {name}_2022 (itself
    /// partitioned by LIST (region): {name}_2022_eu and the default {name}_2022_other) and the
    /// default {name}_default; rows in every leaf.
    /// </summary>
    public static async Task CreateAsync(TestDatabase db, string name, int rows = 2000)
    {
        await db.ExecuteAsync($"""
            CREATE TABLE {name} (id bigint NOT NULL, created date NOT NULL, region text NOT NULL, qty integer, note text) PARTITION BY RANGE (created);
            CREATE TABLE {name}_2020 PARTITION OF {name} FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
            CREATE TABLE {name}_2021 PARTITION OF {name} FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
            CREATE TABLE {name}_2022 PARTITION OF {name} FOR VALUES FROM ('2022-01-01') TO ('2023-01-01') PARTITION BY LIST (region);
            CREATE TABLE {name}_2022_eu PARTITION OF {name}_2022 FOR VALUES IN ('eu');
            CREATE TABLE {name}_2022_other PARTITION OF {name}_2022 DEFAULT;
            CREATE TABLE {name}_default PARTITION OF {name} DEFAULT;
            INSERT INTO {name} SELECT g, date '2020-01-01' + (g % 1400)::int, CASE WHEN g % 3 = 0 THEN 'eu' ELSE 'us' END, g % 50, NULL FROM generate_series(1, {rows}) g;
            ANALYZE {name};
            """);
    }

    /// <summary>
    /// Every index of every relation of the tree: table, index definition, validity and the index
    /// it is attached to, one per line, with the tree's name replaced by "T" so two twins compare equal.
    /// </summary>
    public static async Task<string> IndexesAsync(TestDatabase db, string name)
    {
        var text = await db.ScalarAsync<string>($"""
            SELECT string_agg(t.relid::regclass::text || ': ' || pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid
                              || COALESCE(' of ' || inh.inhparent::regclass::text, ''), E'\n' ORDER BY t.relid::regclass::text, pg_get_indexdef(i.indexrelid))
            FROM pg_partition_tree('{name}') t
            JOIN pg_index i ON i.indrelid = t.relid
            LEFT JOIN pg_inherits inh ON inh.inhrelid = i.indexrelid
            """);
        return (text ?? "").Replace(name, "T", StringComparison.Ordinal);
    }
}
