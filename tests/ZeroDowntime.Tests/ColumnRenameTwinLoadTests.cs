using Npgsql;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// Two application versions, one writing through the old name and one through the new, run every
/// write pattern (<see cref="WritePatterns"/>) under load through a whole copy rename; every write
/// also goes to a twin table renamed by plain DDL. Afterwards no row differs.
/// </summary>
public class ColumnRenameTwinLoadTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public ColumnRenameTwinLoadTests(TestDatabase db)
    {
        _db = db;
    }

    [Fact]
    public async Task Two_versions_writing_every_pattern_through_a_whole_rename_leave_the_rows_a_plain_rename_leaves()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE twin_load (id int PRIMARY KEY, code text NOT NULL, qty int NOT NULL DEFAULT 1, address text DEFAULT 'unknown');
            INSERT INTO twin_load SELECT g, 'c' || g, 1, 'a' || g FROM generate_series(1, 4000) g;
            CREATE TABLE twin_load_twin (LIKE twin_load INCLUDING ALL);
            INSERT INTO twin_load_twin SELECT * FROM twin_load;
            ALTER TABLE twin_load_twin RENAME COLUMN address TO billing;
            """);
        var engine = Engines.For(_db);
        var backfilled = new StrongBox<bool>(false);
        await using var v1 = await Writer.StartAsync(_db, "address", parity: 0, firstNewId: 100_000, backfilled: null);
        await Task.Delay(300);

        var migration = await engine.RenameColumnAsync("twin_load", "address", "billing");
        await using var v2 = await Writer.StartAsync(_db, "billing", parity: 1, firstNewId: 500_000, backfilled);
        await Task.Delay(300);
        await engine.BackfillAsync(migration.Id, new BackfillOptions { BatchSize = 200 });
        backfilled.Value = true;
        await Task.Delay(500);
        var parity = await engine.TestColumnParityAsync(migration.Id);
        await Task.Delay(300);

        // The old version is retired before contract, as in a real rollout; the new one keeps running.
        await v1.StopAsync();
        var completed = await engine.CompleteAsync(migration.Id);
        await Task.Delay(300);
        await v2.StopAsync();

        Assert.Empty(v1.Errors);
        Assert.Empty(v2.Errors);
        Assert.True(parity.InParity, parity.ToString());
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.True(v1.Statements > 100 && v2.Statements > 100, $"statements: v1 {v1.Statements}, v2 {v2.Statements}");
        Assert.True(v1.PatternsRun.Count == WritePatterns.Count && v2.PatternsRun.Count == WritePatterns.Count, $"patterns run: v1 {v1.PatternsRun.Count}, v2 {v2.PatternsRun.Count} of {WritePatterns.Count}");
        await using var connection = await _db.OpenAsync();
        var expected = await WritePatterns.RowsAsync(connection, "twin_load_twin", "billing");
        var actual = await WritePatterns.RowsAsync(connection, "twin_load", "billing");
        Assert.Equal(expected.Except(actual).ToList(), actual.Except(expected).ToList());
        Assert.Equal(expected, actual);
    }

    private sealed class StrongBox<T>(T value)
    {
        public T Value { get; set; } = value;
    }

    /// <summary>One application version: random patterns on the rows it owns (ids of one parity, and those it inserts), on both tables.</summary>
    private sealed class Writer : BackgroundSessions
    {
        private readonly HashSet<int> _patterns = new();

        public IReadOnlyCollection<int> PatternsRun
        {
            get
            {
                lock (_patterns)
                {
                    return _patterns.ToList();
                }
            }
        }

        public static async Task<Writer> StartAsync(TestDatabase db, string column, int parity, int firstNewId, StrongBox<bool>? backfilled)
        {
            var writer = new Writer();
            var connection = await db.OpenAsync();
            writer.Run(() => writer.RunAsync(connection, column, parity, firstNewId, backfilled));
            return writer;
        }

        private async Task RunAsync(NpgsqlConnection connection, string column, int parity, int firstNewId, StrongBox<bool>? backfilled)
        {
            await using var _ = connection;
            var random = new Random(1000 + parity);
            var owned = Enumerable.Range(1, 4000).Where(i => i % 2 == parity).ToList();
            var nextId = firstNewId;
            var step = 0;
            while (!Stopping.IsCancellationRequested)
            {
                var pattern = step < WritePatterns.Count ? step : random.Next(WritePatterns.Count);
                step++;
                if (backfilled is { Value: false } && WritePatterns.ReadsTheColumn(pattern))
                {
                    // The new version reads its name only once the backfill has filled it (documented).
                    continue;
                }

                var existing = owned[random.Next(owned.Count)];
                var tag = $"{column}-{step}";
                try
                {
                    await WritePatterns.RunAsync(connection, pattern, "twin_load", column, nextId, existing, tag);
                    await WritePatterns.RunAsync(connection, pattern, "twin_load_twin", "billing", nextId, existing, tag);
                    Succeeded();
                    lock (_patterns)
                    {
                        _patterns.Add(pattern);
                    }
                }
                catch (PostgresException e)
                {
                    Failed($"pattern {pattern}: {e.SqlState}: {e.MessageText}");
                }

                owned.Add(nextId);
                owned.Add(nextId + 1);
                nextId += 2;
            }
        }
    }
}
