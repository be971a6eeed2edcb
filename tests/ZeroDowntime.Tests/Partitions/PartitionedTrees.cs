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
    /// <see cref="CreateAsync"/> with what a column copy carries on qty: the primary key (id,
    /// created, region), a default, NOT NULL, a check, an index and a comment.
    /// </summary>
    public static async Task CreateWithColumnObjectsAsync(TestDatabase db, string tree)
    {
        await CreateAsync(db, tree);
        await db.ExecuteAsync($"""
            ALTER TABLE {tree} ADD PRIMARY KEY (id, created, region);
            ALTER TABLE {tree} ALTER COLUMN qty SET DEFAULT 0;
            ALTER TABLE {tree} ALTER COLUMN qty SET NOT NULL;
            ALTER TABLE {tree} ADD CONSTRAINT {tree}_qty_check CHECK (qty >= 0);
            CREATE INDEX {tree}_qty_idx ON {tree} (qty);
            COMMENT ON COLUMN {tree}.qty IS 'pieces';
            """);
    }

    /// <summary>Columns, defaults, NOT NULL, comments, constraints and triggers of every relation of the tree, and its indexes, with the tree's name replaced by "T".</summary>
    public static async Task<string> ShapeAsync(TestDatabase db, string tree)
    {
        var columns = await db.ScalarAsync<string>($"""
            SELECT string_agg(replace(x, '{tree}', 'T'), E'\n' ORDER BY x) FROM (
                SELECT t.relid::regclass::text || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                       || ' notnull=' || a.attnotnull || COALESCE(' default ' || pg_get_expr(d.adbin, d.adrelid), '') || COALESCE(' comment ' || col_description(t.relid, a.attnum), '') AS x
                FROM pg_partition_tree('{tree}') t JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped
                LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                UNION ALL
                SELECT c.conrelid::regclass::text || ' constraint ' || c.conname || ' ' || pg_get_constraintdef(c.oid) || ' valid=' || c.convalidated
                FROM pg_partition_tree('{tree}') t JOIN pg_constraint c ON c.conrelid = t.relid
                UNION ALL
                SELECT g.tgrelid::regclass::text || ' trigger ' || g.tgname
                FROM pg_partition_tree('{tree}') t JOIN pg_trigger g ON g.tgrelid = t.relid AND g.tgname LIKE '%zdt%') s
            """);
        return columns + "\n" + await IndexesAsync(db, tree);
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
