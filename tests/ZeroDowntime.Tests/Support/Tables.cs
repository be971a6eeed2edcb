using ZeroDowntime.Engine;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Support;

/// <summary>Test tables, catalog snapshots and the "naive statement stalls the application" demonstration.</summary>
public static class Tables
{
    /// <summary>
    /// Creates customers(id 1..10) once per database and an orders-like table with <paramref name="rows"/>
    /// rows: id bigserial PK, customer_id int, qty int NOT NULL, email text, note text (NULL everywhere).
    /// </summary>
    public static async Task CreateOrdersAsync(TestDatabase db, string name, int rows = 2000)
    {
        await db.ExecuteAsync($"""
            CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY, name text);
            INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 10) g ON CONFLICT DO NOTHING;
            CREATE TABLE {name} (
                id bigserial PRIMARY KEY,
                customer_id int,
                qty int NOT NULL DEFAULT 1,
                email text,
                note text);
            INSERT INTO {name} (customer_id, qty, email) SELECT 1 + g % 10, 1, 'user' || g || '@example.com' FROM generate_series(1, {rows}) g;
            ANALYZE {name};
            """);
    }

    /// <summary>
    /// Everything about the public schema a failed operation must leave as it was: relations,
    /// columns (type, nullability, default), constraints (with validation state) and indexes (with
    /// validity, so an INVALID leftover shows), as text to compare.
    /// </summary>
    public static async Task<string> SnapshotAsync(TestDatabase db)
        => (await db.ScalarAsync<string>("""
            SELECT concat_ws(E'\n',
              (SELECT string_agg(c.relname || ' ' || c.relkind::text, ', ' ORDER BY c.relname) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace),
              (SELECT string_agg(c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' ' || COALESCE(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY c.relname, a.attnum)
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped),
              (SELECT string_agg(con.conrelid::regclass || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid) || ' ' || con.convalidated, ', ' ORDER BY 1)
                 FROM pg_constraint con WHERE con.connamespace = 'public'::regnamespace),
              (SELECT string_agg(pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid, ', ' ORDER BY 1)
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'public'::regnamespace))
            """))!;

    /// <summary>Column type, nullability and default, as the catalog prints them.</summary>
    public static async Task<string> ColumnAsync(TestDatabase db, string table, string column)
        => (await db.ScalarAsync<string>($"""
            SELECT format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull || ' default=' || COALESCE(pg_get_expr(d.adbin, d.adrelid), '')
            FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = '{table}'::regclass AND a.attname = '{column}' AND NOT a.attisdropped
            """))!;

    /// <summary>
    /// Demonstrates the outage the naive statement causes: while <paramref name="blocker"/> holds a
    /// lock on the table (a long report, a slow batch), the naive statement waits for its lock with
    /// no lock_timeout, and the application's writes queue behind it. Returns the application's
    /// longest wait on the server, which is about as long as the blocker held on.
    /// </summary>
    public static async Task<TimeSpan> NaiveStallAsync(TestDatabase db, string table, string naiveSql, string blockerMode, TimeSpan hold, int rows = 2000)
    {
        await using var workload = await Workload.StartAsync(db, table, rows);
        await using var blocker = await LockHolder.HoldAsync(db, table, blockerMode);
        var released = blocker.ReleaseAfterAsync(hold);
        await Task.Delay(50);
        await db.ExecuteAsync(naiveSql);
        await released;
        await Task.Delay(100);
        await workload.StopAsync();
        Assert.Empty(workload.Errors);
        return workload.MaxServerLatency;
    }

    /// <summary>
    /// Runs <paramref name="operation"/> while the application writes to the table and, for the
    /// first <paramref name="hold"/>, a blocker holds <paramref name="blockerMode"/> on it (the same
    /// lock that stalls the naive statement). Returns the result and the application's longest wait
    /// on the server (see <see cref="Workload"/>).
    /// </summary>
    public static async Task<(T Result, TimeSpan MaxLatency, long Statements)> UnderLoadAsync<T>(TestDatabase db, string table, string blockerMode, TimeSpan hold, Func<Task<T>> operation, int rows = 2000)
    {
        await using var workload = await Workload.StartAsync(db, table, rows);
        await using var blocker = await LockHolder.HoldAsync(db, table, blockerMode);
        var released = blocker.ReleaseAfterAsync(hold);
        var result = await operation();
        await released;
        await Task.Delay(100);
        await workload.StopAsync();
        Assert.Empty(workload.Errors);
        return (result, workload.MaxServerLatency, workload.Statements);
    }

    /// <summary>The engine run of an addition, as the cmdlets do it: plan, then run the plan.</summary>
    public static async Task<Migration> ApplyAsync(this MigrationEngine engine, Task<Engine.Planning.PhasePlan> plan)
        => await engine.RunAsync(await plan);
}
