using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Support;

/// <summary>A table's schema as text, to prove an undo restored it or a contract matches a plain rename.</summary>
public static class SchemaSnapshot
{
    /// <summary>Columns (in order), constraints, indexes, triggers, defaults and grants, names included.</summary>
    public static async Task<string> OfAsync(TestDatabase db, string table)
        => (await db.ScalarAsync<string>($"""
            SELECT concat_ws(E'\n',
              (SELECT relkind::text || ' ' || COALESCE(relacl::text, '') FROM pg_class WHERE oid = '{table}'::regclass),
              (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull || ' ' || COALESCE(pg_get_expr(d.adbin, d.adrelid), '') || ' ' || COALESCE(attacl::text, ''), ', ' ORDER BY attnum)
                 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped),
              (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated, ', ' ORDER BY conname) FROM pg_constraint WHERE conrelid = '{table}'::regclass),
              (SELECT string_agg(pg_get_indexdef(indexrelid) || ' ' || indisvalid, ', ' ORDER BY pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = '{table}'::regclass),
              (SELECT string_agg(tgname, ', ' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = '{table}'::regclass AND NOT tgisinternal))
            """))!;

    /// <summary>
    /// What a plain RENAME COLUMN would leave, compared without names or column order: each column's
    /// name, type, nullability and default; each constraint and index definition with the table's
    /// name and object names taken out.
    /// </summary>
    public static async Task<string> ShapeAsync(TestDatabase db, string table)
        => (await ShapeTextAsync(db, table)).Replace(table, "T", StringComparison.Ordinal);

    private static async Task<string> ShapeTextAsync(TestDatabase db, string table)
        => (await db.ScalarAsync<string>($"""
            SELECT concat_ws(E'\n',
              (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull || ' ' || COALESCE(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY attname)
                 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped),
              (SELECT string_agg(contype::text || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated, ', ' ORDER BY contype::text || ' ' || pg_get_constraintdef(oid)) FROM pg_constraint WHERE conrelid = '{table}'::regclass),
              (SELECT string_agg(x, ', ' ORDER BY x) FROM (SELECT regexp_replace(pg_get_indexdef(indexrelid), '^CREATE (UNIQUE )?INDEX \S+ ON \S+', 'CREATE \1INDEX ON') AS x FROM pg_index WHERE indrelid = '{table}'::regclass) i))
            """))!;
}
