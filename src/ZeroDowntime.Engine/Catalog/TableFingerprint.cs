using Npgsql;
using NpgsqlTypes;

namespace ZeroDowntime.Engine.Catalog;

/// <summary>
/// Everything about a table that an expand may change, one line per object, as the server prints
/// it: the table (name, kind, grants, replica identity, comment), its columns (type, collation,
/// NOT NULL, default, statistics target, grants, comment), constraints (with their validation
/// state), indexes (with validity, CLUSTER mark, replica identity, comment), triggers, extended
/// statistics, and the functions in the ledger schema (where sync trigger functions live) that no
/// other table's trigger uses (so another table's migration running meanwhile does not count).
/// Taken before an expand and after its automatic undo: equal fingerprints are the proof that a
/// failed expand left nothing behind.
/// </summary>
internal static class TableFingerprint
{
    private const string Sql = """
        SELECT line FROM (
          SELECT 1 AS part, format('table %s kind=%s acl=%s replident=%s comment=%s', c.oid::regclass, c.relkind, c.relacl, c.relreplident, obj_description(c.oid, 'pg_class')) AS line
          FROM pg_class c WHERE c.oid = $1
          UNION ALL
          SELECT 2, format('column %I %s collation=%s notnull=%s default=%s stats=%s acl=%s comment=%s', a.attname, format_type(a.atttypid, a.atttypmod),
                 a.attcollation, a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attstattarget, a.attacl, col_description(a.attrelid, a.attnum))
          FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
          UNION ALL
          SELECT 3, format('constraint %I %s validated=%s', con.conname, pg_get_constraintdef(con.oid), con.convalidated)
          FROM pg_constraint con WHERE con.conrelid = $1
          UNION ALL
          SELECT 4, format('index %s valid=%s ready=%s clustered=%s replident=%s comment=%s', pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisready,
                 i.indisclustered, i.indisreplident, obj_description(i.indexrelid, 'pg_class'))
          FROM pg_index i WHERE i.indrelid = $1
          UNION ALL
          SELECT 5, format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
          FROM pg_trigger t WHERE t.tgrelid = $1 AND NOT t.tgisinternal
          UNION ALL
          SELECT 6, format('statistics %I.%I', s.stxnamespace::regnamespace, s.stxname)
          FROM pg_statistic_ext s WHERE s.stxrelid = $1
          UNION ALL
          SELECT 7, format('function %s', p.oid::regprocedure)
          FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $2)
            AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgfoid = p.oid AND t.tgrelid <> $1)
        ) f ORDER BY part, line
        """;

    public static async Task<IReadOnlyList<string>> ReadAsync(NpgsqlConnection connection, uint tableOid, string ledgerSchema, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(Sql, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = tableOid, NpgsqlDbType = NpgsqlDbType.Oid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = ledgerSchema });
        var lines = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            lines.Add(reader.GetString(0));
        }

        return lines;
    }

    /// <summary>What differs, for the ledger and the error: lines gone ("-") and lines new ("+"); empty when equal.</summary>
    public static string Difference(IReadOnlyList<string> before, IReadOnlyList<string> after)
        => string.Join("; ", before.Except(after).Select(l => "- " + l).Concat(after.Except(before).Select(l => "+ " + l)));
}
