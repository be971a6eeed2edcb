using Npgsql;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Support;

/// <summary>
/// A closed-loop application that saturates the server: <c>sessions</c> connections that each run
/// the next statement as soon as the last one returns (point reads and updates by key on a table of
/// its own), with no pause. What a busy production server at its peak looks like to the backfill.
/// </summary>
public sealed class SaturatingLoad : BackgroundSessions
{
    private SaturatingLoad()
    {
    }

    public static async Task<SaturatingLoad> StartAsync(TestDatabase db, string table, int sessions = 4)
    {
        await db.ExecuteAsync($"""
            CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
            INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 10000) g ON CONFLICT DO NOTHING;
            """);
        var load = new SaturatingLoad();
        load.Run(Enumerable.Range(0, sessions).Select(seed => (Func<Task>)(() => load.RunSessionAsync(db, table, seed))).ToArray());
        return load;
    }

    private async Task RunSessionAsync(TestDatabase db, string table, int seed)
    {
        var random = new Random(seed);
        await using var connection = await db.OpenAsync();
        await using var read = new NpgsqlCommand($"SELECT n FROM {table} WHERE id = $1", connection);
        await using var update = new NpgsqlCommand($"UPDATE {table} SET n = n + 1 WHERE id = $1", connection);
        read.Parameters.Add(new NpgsqlParameter { Value = 0 });
        update.Parameters.Add(new NpgsqlParameter { Value = 0 });
        while (!Stopping.IsCancellationRequested)
        {
            var cmd = random.Next(10) < 7 ? read : update;
            cmd.Parameters[0].Value = random.Next(1, 10_001);
            try
            {
                await cmd.ExecuteNonQueryAsync(Stopping);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (NpgsqlException) when (Stopping.IsCancellationRequested)
            {
                return;
            }

            Succeeded();
        }
    }
}
