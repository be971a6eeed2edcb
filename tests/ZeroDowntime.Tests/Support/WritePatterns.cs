using Npgsql;

namespace ZeroDowntime.Tests.Support;

/// <summary>
/// Every way an application writes a column that the sync trigger has to follow: INSERT with a
/// value, an explicit NULL, DEFAULT, or the column omitted; UPDATE to a value, to NULL, to DEFAULT,
/// to itself, of another column only; INSERT ... ON CONFLICT DO UPDATE / DO NOTHING; MERGE
/// (PostgreSQL 15) inserting and updating; COPY with and without the column; DELETE. The table has
/// id int PRIMARY KEY, code text NOT NULL, qty int NOT NULL and the written column (text).
/// </summary>
public static class WritePatterns
{
    public const int Count = 20;

    /// <summary>Patterns whose new value is computed from the column itself (SET c = c, SET c = upper(c) || ...).</summary>
    public static bool ReadsTheColumn(int pattern) => pattern is 8 or 9;

    /// <summary>
    /// Runs pattern <paramref name="pattern"/> through <paramref name="column"/>: rows it inserts get
    /// id <paramref name="newId"/> (and <paramref name="newId"/> + 1), rows it changes are <paramref name="existingId"/>.
    /// </summary>
    public static async Task RunAsync(NpgsqlConnection connection, int pattern, string table, string column, long newId, long existingId, string tag)
    {
        var (t, c, n, e, v) = (table, column, newId, existingId, tag.Replace("'", "''", StringComparison.Ordinal));
        // MERGE exists from PostgreSQL 15; before, patterns 14-16 run as the statements a MERGE of
        // the same rows amounts to there (an upsert, and an UPDATE of the matched row).
        var merge = connection.PostgreSqlVersion.Major >= 15;
        var sql = pattern switch
        {
            0 => $"INSERT INTO {t} (id, code, qty, {c}) VALUES ({n}, 'p0', 1, '{v}')",
            1 => $"INSERT INTO {t} (id, code, qty, {c}) VALUES ({n}, 'p1', 1, NULL)",
            2 => $"INSERT INTO {t} (id, code, qty) VALUES ({n}, 'p2', 1)",
            3 => $"INSERT INTO {t} (id, code, qty, {c}) VALUES ({n}, 'p3', 1, DEFAULT)",
            4 => $"UPDATE {t} SET {c} = '{v}' WHERE id = {e}",
            5 => $"UPDATE {t} SET {c} = NULL WHERE id = {e}",
            6 => $"UPDATE {t} SET {c} = DEFAULT WHERE id = {e}",
            7 => $"UPDATE {t} SET qty = qty + 1 WHERE id = {e}",
            8 => $"UPDATE {t} SET {c} = {c} WHERE id = {e}",
            9 => $"UPDATE {t} SET {c} = upper({c}) || '{v}', qty = qty + 1 WHERE id = {e}",
            10 => $"INSERT INTO {t} (id, code, qty, {c}) VALUES ({e}, 'p10', 1, '{v}') ON CONFLICT (id) DO UPDATE SET {c} = EXCLUDED.{c}",
            11 => $"INSERT INTO {t} (id, code, qty, {c}) VALUES ({e}, 'p11', 1, NULL) ON CONFLICT (id) DO UPDATE SET {c} = EXCLUDED.{c}",
            12 => $"INSERT INTO {t} (id, code, qty) VALUES ({e}, 'p12', 1) ON CONFLICT (id) DO UPDATE SET qty = {t}.qty + 10",
            13 => $"INSERT INTO {t} (id, code, qty, {c}) VALUES ({n}, 'p13', 1, '{v}') ON CONFLICT (id) DO NOTHING",
            14 when !merge => $"INSERT INTO {t} (id, code, qty, {c}) VALUES ({e}, 'p14', 1, '{v}'), ({n}, 'p14', 1, '{v}') ON CONFLICT (id) DO UPDATE SET {c} = EXCLUDED.{c}",
            15 when !merge => $"INSERT INTO {t} (id, code, qty) VALUES ({e}, 'p15', 1), ({n}, 'p15', 1) ON CONFLICT (id) DO UPDATE SET {c} = NULL",
            16 when !merge => $"UPDATE {t} SET qty = qty + 100 WHERE id = {e}",
            14 => $"MERGE INTO {t} m USING (VALUES ({e}::int, '{v}'), ({n}::int, '{v}')) s(id, val) ON m.id = s.id WHEN MATCHED THEN UPDATE SET {c} = s.val WHEN NOT MATCHED THEN INSERT (id, code, qty, {c}) VALUES (s.id, 'p14', 1, s.val)",
            15 => $"MERGE INTO {t} m USING (VALUES ({e}::int), ({n}::int)) s(id) ON m.id = s.id WHEN MATCHED THEN UPDATE SET {c} = NULL WHEN NOT MATCHED THEN INSERT (id, code, qty) VALUES (s.id, 'p15', 1)",
            16 => $"MERGE INTO {t} m USING (VALUES ({e}::int)) s(id) ON m.id = s.id WHEN MATCHED THEN UPDATE SET qty = m.qty + 100",
            17 => $"DELETE FROM {t} WHERE id = {e}",
            18 => null,
            19 => null,
            _ => throw new ArgumentOutOfRangeException(nameof(pattern)),
        };
        if (sql is not null)
        {
            await using var cmd = new NpgsqlCommand(sql, connection);
            await cmd.ExecuteNonQueryAsync();
            return;
        }

        // COPY: with the column (a value and a NULL), or without it (the default).
        await using var writer = await connection.BeginTextImportAsync(pattern == 18 ? $"COPY {t} (id, code, qty, {c}) FROM STDIN" : $"COPY {t} (id, code, qty) FROM STDIN");
        await writer.WriteAsync(pattern == 18 ? $"{n}\tp18\t1\t{tag}\n{n + 1}\tp18\t1\t\\N\n" : $"{n}\tp19\t1\n");
    }

    /// <summary>The rows as text, in id order, with the column read through <paramref name="column"/>.</summary>
    public static async Task<IReadOnlyList<string>> RowsAsync(NpgsqlConnection connection, string table, string column)
    {
        var rows = new List<string>();
        await using var cmd = new NpgsqlCommand($"SELECT id || '|' || code || '|' || qty || '|' || COALESCE({column}, '<NULL>') FROM {table} ORDER BY id", connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }
}
