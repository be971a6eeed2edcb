using System.Text;
using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;
using Xunit.Abstractions;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// The issue's "done when" for the column copy: a range-partitioned table of 24 monthly
/// partitions (one of them sub-partitioned by list) plus a default partition, under two application
/// versions writing concurrently (the old one through the old name, the new one through the new
/// name) through expand, backfill, parity and contract, with a partition created mid-migration;
/// every write also goes to a twin renamed by the plain RENAME COLUMN. Afterwards: no error, no
/// lost write (the rows are the twin's), and the twin's shape on every partition.
/// </summary>
public class PartitionedTwinLoadTests : IClassFixture<TestDatabase>
{
    private const int Rows = 12_000;

    private readonly TestDatabase _db;
    private readonly ITestOutputHelper _output;

    public PartitionedTwinLoadTests(TestDatabase db, ITestOutputHelper output)
    {
        _db = db;
        _output = output;
    }

    private async Task CreateAsync(string tree)
    {
        var sql = new StringBuilder($"""
            CREATE TABLE {tree} (id bigint NOT NULL, created date NOT NULL, region text NOT NULL, qty integer NOT NULL DEFAULT 0, note text,
                                 PRIMARY KEY (id, created, region), CONSTRAINT {tree}_qty_check CHECK (qty >= 0)) PARTITION BY RANGE (created);
            CREATE INDEX {tree}_qty_idx ON {tree} (qty);
            CREATE TABLE {tree}_default PARTITION OF {tree} DEFAULT;

            """);
        for (var month = 0; month < 24; month++)
        {
            var from = new DateOnly(2023, 1, 1).AddMonths(month);
            var name = $"{tree}_{from:yyyy_MM}";
            var bounds = $"FOR VALUES FROM ('{from:yyyy-MM-dd}') TO ('{from.AddMonths(1):yyyy-MM-dd}')";
            sql.AppendLine(month == 23
                ? $"CREATE TABLE {name} PARTITION OF {tree} {bounds} PARTITION BY LIST (region); CREATE TABLE {name}_eu PARTITION OF {name} FOR VALUES IN ('eu'); CREATE TABLE {name}_other PARTITION OF {name} DEFAULT;"
                : $"CREATE TABLE {name} PARTITION OF {tree} {bounds};");
        }

        // 760 days from 2023-01-01: the last weeks go to the default partition.
        sql.AppendLine($"INSERT INTO {tree} SELECT g, date '2023-01-01' + (g % 760), CASE WHEN g % 3 = 0 THEN 'eu' ELSE 'us' END, g % 40, NULL FROM generate_series(1, {Rows}) g;");
        sql.AppendLine($"ANALYZE {tree};");
        await _db.ExecuteAsync(sql.ToString());
    }

    private async Task<string> ShapeAsync(string tree, string? renameFrom = null)
    {
        var all = await PartitionedTrees.ShapeAsync(_db, tree);
        if (renameFrom is not null)
        {
            // The copies take the new column's name where the old one was part of theirs (documented).
            all = all.Replace(renameFrom, "amount", StringComparison.Ordinal);
        }

        return string.Join("\n", all.Split('\n').Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Two_versions_writing_through_a_whole_copy_rename_of_a_table_of_24_partitions_leave_the_rows_and_shape_of_the_plain_rename()
    {
        await CreateAsync("ptl_a");
        await CreateAsync("ptl_b");
        await _db.ExecuteAsync("ALTER TABLE ptl_b RENAME COLUMN qty TO amount");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);
        var backfilled = new Flag();

        var created = new Flag();
        await using var v1 = await Writer.StartAsync(_db, "qty", parity: 0, firstNewId: 100_000, backfilled: null, created);
        await Task.Delay(300);
        var expanded = await engine.RunAsync(await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "ptl_a", "qty", "amount")));
        await using var v2 = await Writer.StartAsync(_db, "amount", parity: 1, firstNewId: 500_000, backfilled, created);
        await Task.Delay(300);

        // The nightly partition, created while both versions write.
        await _db.ExecuteAsync("CREATE TABLE ptl_a_2025_02 PARTITION OF ptl_a FOR VALUES FROM ('2025-02-01') TO ('2025-03-01')");
        await _db.ExecuteAsync("CREATE TABLE ptl_b_2025_02 PARTITION OF ptl_b FOR VALUES FROM ('2025-02-01') TO ('2025-03-01')");
        created.Set();

        var done = await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id), new BackfillOptions { BatchSize = 500 });
        Assert.Equal(MigrationPhase.Backfilled, done.Phase);
        backfilled.Set();
        await Task.Delay(500);
        var parity = await engine.TestColumnParityAsync(expanded.Id);
        await Task.Delay(300);

        // The old version is retired before the contract, as in a real rollout; the new one keeps writing.
        await v1.StopAsync();
        var completed = await engine.RunAsync(await engine.PlanContractAsync(expanded.Id));
        await Task.Delay(300);
        await v2.StopAsync();

        Assert.Empty(v1.Errors);
        Assert.Empty(v2.Errors);
        Assert.True(v1.Statements > 50 && v2.Statements > 50, $"statements: v1 {v1.Statements}, v2 {v2.Statements}");
        Assert.Equal(0L, parity.Mismatches);
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(await RowsAsync("ptl_b"), await RowsAsync("ptl_a"));
        Assert.Equal(await ShapeAsync("ptl_b", renameFrom: "qty"), await ShapeAsync("ptl_a"));
        Assert.True(await _db.ScalarAsync<long>("SELECT count(*) FROM ptl_a_2025_02") > 0, "the writers reached the partition created mid-migration");

        // How long each locking step held its locks (the figures in docs/architecture.md).
        foreach (var held in observer.VerboseMessages.Where(m => m.Contains("held locks for", StringComparison.Ordinal)))
        {
            _output.WriteLine(held);
        }
    }

    private async Task<List<string>> RowsAsync(string tree)
    {
        await using var connection = await _db.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT format('%s|%s|%s|%s|%s', id, created, region, amount, note) FROM {tree} ORDER BY id", connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }

    private sealed class Flag
    {
        private volatile bool _set;

        public bool IsSet => _set;

        public void Set() => _set = true;
    }

    /// <summary>One application version: writes on the rows it owns (ids of one parity, and those it inserts), the same statement on the table and on the twin.</summary>
    private sealed class Writer : BackgroundSessions
    {
        public static async Task<Writer> StartAsync(TestDatabase db, string column, int parity, int firstNewId, Flag? backfilled, Flag created)
        {
            var writer = new Writer();
            var connection = await db.OpenAsync();
            writer.Run(() => writer.RunAsync(connection, column, parity, firstNewId, backfilled, created));
            return writer;
        }

        private async Task RunAsync(NpgsqlConnection connection, string column, int parity, int firstNewId, Flag? backfilled, Flag created)
        {
            await using var _ = connection;
            var random = new Random(2000 + parity);
            var owned = Enumerable.Range(1, Rows).Where(i => i % 2 == parity).Select(i => (long)i).ToList();
            var nextId = (long)firstNewId;
            while (!Stopping.IsCancellationRequested)
            {
                var existing = owned[random.Next(owned.Count)];
                var value = random.Next(0, 1000);
                // Dates past the monthly partitions reach the default partition, and once it exists the
                // one created mid-migration (before, February 2025 in the default would stop its creation).
                var day = new DateOnly(2023, 1, 1).AddDays(random.Next(0, created.IsSet ? 800 : 760)).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
                var region = random.Next(3) == 0 ? "eu" : "us";
                var kind = random.Next(7);
                if (kind == 4 && backfilled is { IsSet: false })
                {
                    // The new version reads its name only once the backfill has filled it (documented).
                    kind = 0;
                }

                string Sql(string table, string col) => kind switch
                {
                    0 => $"INSERT INTO {table} (id, created, region, {col}) VALUES ({nextId}, '{day}', '{region}', {value})",
                    1 => $"INSERT INTO {table} (id, created, region, note) VALUES ({nextId}, '{day}', '{region}', 'omitted')",
                    2 => $"UPDATE {table} SET {col} = {value} WHERE id = {existing}",
                    3 => $"UPDATE {table} SET note = 'n{value}' WHERE id = {existing}",
                    4 => $"UPDATE {table} SET {col} = {col} + 1 WHERE id = {existing}",
                    5 => $"INSERT INTO {table} (id, created, region, {col}) VALUES ({nextId}, '{day}', '{region}', {value}) ON CONFLICT (id, created, region) DO UPDATE SET {col} = EXCLUDED.{col}",
                    _ => $"DELETE FROM {table} WHERE id = {existing}",
                };

                try
                {
                    foreach (var (table, col) in new[] { ("ptl_a", column), ("ptl_b", "amount") })
                    {
                        await using var cmd = new NpgsqlCommand(Sql(table, col), connection);
                        await cmd.ExecuteNonQueryAsync();
                    }

                    Succeeded();
                }
                catch (PostgresException e)
                {
                    Failed($"{Sql("ptl_a", column)}: {e.MessageText}");
                }

                if (kind is 0 or 1 or 5)
                {
                    owned.Add(nextId);
                    nextId++;
                }

                await Task.Delay(5);
            }
        }
    }
}
