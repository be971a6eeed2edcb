using Npgsql;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Support;

/// <summary>
/// A simulated application version that reads and writes a table through one column name in a loop
/// (INSERT, UPDATE, DELETE, SELECT, upsert on a unique column), recording every error it sees.
/// </summary>
public sealed class AppVersion : BackgroundSessions
{
    private AppVersion(TestDatabase db, string table, string column, string tag)
    {
        Run(() => RunAsync(db, table, column, tag));
    }

    public static AppVersion Start(TestDatabase db, string table, string column, string tag) => new(db, table, column, tag);

    private async Task RunAsync(TestDatabase db, string table, string column, string tag)
    {
        var random = new Random(tag.GetHashCode(StringComparison.Ordinal));
        await using var conn = await db.OpenAsync();
        var n = 0;
        while (!Stopping.IsCancellationRequested)
        {
            var value = $"{tag}-{n++}";
            var sql = random.Next(10) switch
            {
                0 or 1 => $"INSERT INTO {table} (code, {column}, qty) VALUES ('{value}', '{value}', 5) RETURNING id",
                2 or 3 => $"UPDATE {table} SET {column} = '{value}' WHERE id = (SELECT max(id) - {random.Next(50)} FROM {table}) RETURNING id",
                4 => $"DELETE FROM {table} WHERE id = (SELECT min(id) + {random.Next(50)} FROM {table}) RETURNING id",
                5 => $"INSERT INTO {table} (code, {column}, qty) VALUES ('code-{random.Next(200)}', '{value}', 7) ON CONFLICT (code) DO UPDATE SET {column} = EXCLUDED.{column} RETURNING id",
                _ => $"SELECT count(*) FROM {table} WHERE {column} = '{value}'",
            };
            try
            {
                await using var cmd = new NpgsqlCommand(sql, conn);
                await cmd.ExecuteScalarAsync();
                Succeeded();
            }
            catch (PostgresException e)
            {
                Failed($"{e.SqlState}: {e.MessageText} [{sql}]");
            }
        }
    }
}
