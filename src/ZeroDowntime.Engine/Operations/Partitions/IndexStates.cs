using Npgsql;
using NpgsqlTypes;

namespace ZeroDowntime.Engine.Operations.Partitions;

/// <summary>An index found under a name a plan chose: whether it is valid, and whether a primary key or unique constraint owns it.</summary>
internal readonly record struct IndexState(bool Valid, bool BacksKey);

/// <summary>
/// Reads what a run stopped half way left under the index names a partition plan chose, so
/// planning again continues it (skips a valid index, builds an INVALID one again) or undoes it.
/// </summary>
internal static class IndexStates
{
    /// <summary>The state of each of <paramref name="qualifiedNames"/> that is an index; names with none are absent.</summary>
    public static async Task<IReadOnlyDictionary<string, IndexState>> ReadAsync(NpgsqlConnection connection, IEnumerable<string> qualifiedNames, CancellationToken ct)
    {
        const string sql = """
            SELECT r.name, i.indisvalid,
                   EXISTS (SELECT FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u'))
            FROM unnest($1::text[]) AS r(name)
            JOIN pg_index i ON i.indexrelid = to_regclass(r.name)
            """;
        var found = new Dictionary<string, IndexState>(StringComparer.Ordinal);
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = qualifiedNames.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            found[reader.GetString(0)] = new IndexState(reader.GetBoolean(1), reader.GetBoolean(2));
        }

        return found;
    }
}
