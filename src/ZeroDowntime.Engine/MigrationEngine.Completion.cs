using Npgsql;

namespace ZeroDowntime.Engine;

/// <summary>What kind of name a prompt is completing.</summary>
public enum NameKind
{
    Schema,
    Table,
    Column,
    Index,
    VersionSchema,
}

/// <summary>Names for argument completion: read-only catalog reads, at most <see cref="MigrationEngine.CompletionLimit"/> names.</summary>
/// <param name="Kind">What to list.</param>
/// <param name="Prefix">What the user typed so far (exact, case-sensitive, as every name the module takes).</param>
/// <param name="Schema">The schema to look in (tables, columns, indexes); public when not given.</param>
/// <param name="Table">The table whose columns or indexes to list.</param>
public sealed record NameCompletionRequest(NameKind Kind, string Prefix, string? Schema = null, string? Table = null);

public sealed partial class MigrationEngine
{
    /// <summary>A prompt shows a list, not a dump: more names than this are cut.</summary>
    public const int CompletionLimit = 200;

    /// <summary>
    /// Names from the catalog that start with the prefix, sorted. Names are parameters, never SQL
    /// text; the version schemas are those carrying the module's marker comment.
    /// </summary>
    public async Task<IReadOnlyList<string>> CompleteNamesAsync(NameCompletionRequest request, CancellationToken cancellationToken = default)
    {
        var sql = request.Kind switch
        {
            NameKind.Schema => "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' AND left(nspname, length(@prefix)) = @prefix ORDER BY 1 LIMIT @limit",
            NameKind.VersionSchema => "SELECT nspname FROM pg_namespace WHERE obj_description(oid, 'pg_namespace') LIKE 'ZeroDowntime version schema%' AND left(nspname, length(@prefix)) = @prefix ORDER BY 1 LIMIT @limit",
            NameKind.Table => "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = @schema AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND left(c.relname, length(@prefix)) = @prefix ORDER BY 1 LIMIT @limit",
            NameKind.Column => "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = @schema AND c.relname = @table AND a.attnum > 0 AND NOT a.attisdropped AND left(a.attname, length(@prefix)) = @prefix ORDER BY a.attnum LIMIT @limit",
            _ => "SELECT i.relname FROM pg_class i JOIN pg_namespace n ON n.oid = i.relnamespace JOIN pg_index x ON x.indexrelid = i.oid JOIN pg_class t ON t.oid = x.indrelid WHERE n.nspname = @schema AND (@table IS NULL OR t.relname = @table) AND left(i.relname, length(@prefix)) = @prefix ORDER BY 1 LIMIT @limit",
        };

        await using var connection = await Target.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("prefix", request.Prefix);
        command.Parameters.AddWithValue("schema", request.Schema ?? "public");
        command.Parameters.Add(new NpgsqlParameter<string?>("table", NpgsqlTypes.NpgsqlDbType.Text) { TypedValue = request.Table });
        command.Parameters.AddWithValue("limit", CompletionLimit);
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }
}
