using System.Globalization;
using Npgsql;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Bench.Server;

/// <summary>
/// The table every scenario migrates: orders(id bigserial PK, code unique, address text NOT NULL
/// DEFAULT, qty, created_at) with an index on address, so the rename has a default to move, a NOT
/// NULL to carry and an index to rebuild. Rows are generated from their id, so two tables of the
/// same size are identical (a fair reference for the backfill).
/// </summary>
public sealed record OrdersTable(string Schema, string Name, long Rows)
{
    private const long RowsPerInsert = 1_000_000;

    public const string OldColumn = "address";

    public const string NewColumn = "billing_address";

    /// <summary>The quoted, qualified name.</summary>
    public string Qualified => Ident.Qualify(Schema, Name);

    /// <summary>Creates and fills the table, builds its keys and index after loading (much faster), and vacuums it, as a settled production table would be.</summary>
    public static async Task<OrdersTable> CreateAsync(NpgsqlDataSource dataSource, string schema, string name, long rows, Action<long>? progress, CancellationToken ct)
    {
        var table = new OrdersTable(schema, name, rows);
        var q = table.Qualified;
        await Sql.ExecuteAsync(dataSource, $"""
            CREATE TABLE {q} (
                id bigint NOT NULL,
                code text NOT NULL,
                address text NOT NULL DEFAULT 'unknown',
                qty integer NOT NULL DEFAULT 1,
                created_at timestamptz NOT NULL DEFAULT now())
            """, ct).ConfigureAwait(false);
        for (long from = 1; from <= rows; from += RowsPerInsert)
        {
            var to = Math.Min(rows, from + RowsPerInsert - 1);
            await Sql.ExecuteAsync(dataSource, string.Create(CultureInfo.InvariantCulture, $"""
                INSERT INTO {q} (id, code, address, qty, created_at)
                SELECT g, 'C' || lpad(g::text, 10, '0'), g || ' Main Street, Springfield ' || (g % 997), 1 + g % 9,
                       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
                FROM generate_series({from}::bigint, {to}::bigint) AS g
                """), ct).ConfigureAwait(false);
            progress?.Invoke(to);
        }

        var sequence = Ident.Qualify(schema, name + "_id_seq");
        await Sql.ExecuteAsync(dataSource, string.Create(CultureInfo.InvariantCulture, $"""
            SET maintenance_work_mem = '512MB';
            CREATE SEQUENCE {sequence} OWNED BY {q}.id;
            SELECT setval({Ident.Literal(sequence)}, {Math.Max(rows, 1)});
            ALTER TABLE {q} ALTER COLUMN id SET DEFAULT nextval({Ident.Literal(sequence)});
            ALTER TABLE {q} ADD CONSTRAINT {Ident.Quote(name + "_pkey")} PRIMARY KEY (id);
            ALTER TABLE {q} ADD CONSTRAINT {Ident.Quote(name + "_code_key")} UNIQUE (code);
            CREATE INDEX {Ident.Quote(name + "_address_idx")} ON {q} (address);
            RESET maintenance_work_mem
            """), ct).ConfigureAwait(false);
        await Sql.ExecuteAsync(dataSource, $"VACUUM (ANALYZE) {q}", ct).ConfigureAwait(false);
        return table;
    }

    /// <summary>Turns autovacuum off or on for this table (a reference run must not get a vacuum the other did not).</summary>
    public Task SetAutovacuumAsync(NpgsqlDataSource dataSource, bool enabled, CancellationToken ct)
        => Sql.ExecuteAsync(dataSource, $"ALTER TABLE {Qualified} SET (autovacuum_enabled = {(enabled ? "on" : "off")})", ct);

    public Task DropAsync(NpgsqlDataSource dataSource, CancellationToken ct)
        => Sql.ExecuteAsync(dataSource, $"DROP TABLE IF EXISTS {Qualified} CASCADE", ct);
}
