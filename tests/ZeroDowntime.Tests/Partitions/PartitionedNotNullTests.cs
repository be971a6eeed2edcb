using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;
using Xunit.Abstractions;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// Set-ColumnNotNull on a partitioned table (two levels, a default partition): the check added and
/// validated partition by partition, then on each partitioned level without a scan; SET NOT NULL on
/// the parent at contract, proven per partition; the end state of the plain SET NOT NULL on a twin.
/// </summary>
public class PartitionedNotNullTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;
    private readonly ITestOutputHelper _output;

    public PartitionedNotNullTests(TestDatabase db, ITestOutputHelper output)
    {
        _db = db;
        _output = output;
    }

    private Task<string?> ShapeAsync(string tree) => _db.ScalarAsync<string>($"""
        SELECT string_agg(x, E'\n' ORDER BY x) FROM (
            SELECT replace(t.relid::regclass::text, '{tree}', 'T') || ' qty notnull=' || a.attnotnull AS x
            FROM pg_partition_tree('{tree}') t JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = 'qty'
            UNION ALL
            SELECT replace(c.conrelid::regclass::text, '{tree}', 'T') || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
            FROM pg_partition_tree('{tree}') t JOIN pg_constraint c ON c.conrelid = t.relid) s
        """);

    [Fact]
    public async Task Not_null_is_validated_per_partition_then_per_level_and_ends_as_the_plain_statement_on_a_twin()
    {
        await PartitionedTrees.CreateAsync(_db, "pnn_a");
        await PartitionedTrees.CreateAsync(_db, "pnn_b");
        var observer = new RecordingObserver();
        var engine = Engines.For(_db, observer);

        var plan = await engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", "pnn_a", "qty"));
        var statements = plan.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Equal(
            new[]
            {
                "ALTER TABLE \"public\".\"pnn_a_2020\" ADD CONSTRAINT \"zdt_not_null_qty\" CHECK (\"qty\" IS NOT NULL) NOT VALID",
                "ALTER TABLE \"public\".\"pnn_a_2020\" VALIDATE CONSTRAINT \"zdt_not_null_qty\"",
                "ALTER TABLE \"public\".\"pnn_a_2021\" ADD CONSTRAINT \"zdt_not_null_qty\" CHECK (\"qty\" IS NOT NULL) NOT VALID",
                "ALTER TABLE \"public\".\"pnn_a_2021\" VALIDATE CONSTRAINT \"zdt_not_null_qty\"",
                "ALTER TABLE \"public\".\"pnn_a_default\" ADD CONSTRAINT \"zdt_not_null_qty\" CHECK (\"qty\" IS NOT NULL) NOT VALID",
                "ALTER TABLE \"public\".\"pnn_a_default\" VALIDATE CONSTRAINT \"zdt_not_null_qty\"",
                "ALTER TABLE \"public\".\"pnn_a_2022_eu\" ADD CONSTRAINT \"zdt_not_null_qty\" CHECK (\"qty\" IS NOT NULL) NOT VALID",
                "ALTER TABLE \"public\".\"pnn_a_2022_eu\" VALIDATE CONSTRAINT \"zdt_not_null_qty\"",
                "ALTER TABLE \"public\".\"pnn_a_2022_other\" ADD CONSTRAINT \"zdt_not_null_qty\" CHECK (\"qty\" IS NOT NULL) NOT VALID",
                "ALTER TABLE \"public\".\"pnn_a_2022_other\" VALIDATE CONSTRAINT \"zdt_not_null_qty\"",
                "ALTER TABLE \"public\".\"pnn_a_2022\" ADD CONSTRAINT \"zdt_not_null_qty\" CHECK (\"qty\" IS NOT NULL) NOT VALID",
                "ALTER TABLE \"public\".\"pnn_a_2022\" VALIDATE CONSTRAINT \"zdt_not_null_qty\"",
                "ALTER TABLE \"public\".\"pnn_a\" ADD CONSTRAINT \"zdt_not_null_qty\" CHECK (\"qty\" IS NOT NULL) NOT VALID",
                "ALTER TABLE \"public\".\"pnn_a\" VALIDATE CONSTRAINT \"zdt_not_null_qty\"",
            },
            statements);

        var expanded = await engine.RunAsync(plan);
        Assert.Equal(MigrationPhase.Expanded, expanded.Phase);
        Assert.Equal(7L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('pnn_a') t ON t.relid = c.conrelid WHERE c.conname = 'zdt_not_null_qty' AND c.convalidated"));
        await using (var conn = await _db.OpenAsync())
        await using (var insert = new NpgsqlCommand("INSERT INTO pnn_a VALUES (99999, '2022-03-01', 'eu', NULL, NULL)", conn))
        {
            Assert.Equal(PostgresErrorCodes.CheckViolation, (await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync())).SqlState);
        }

        var contract = await engine.PlanContractAsync(expanded.Id);
        Assert.Equal(
            new[] { "ALTER TABLE \"public\".\"pnn_a\" ALTER COLUMN \"qty\" SET NOT NULL", "ALTER TABLE \"public\".\"pnn_a\" DROP CONSTRAINT \"zdt_not_null_qty\"" },
            Assert.Single(contract.Steps).Statements);
        var completed = await engine.RunAsync(contract);

        await _db.ExecuteAsync("ALTER TABLE pnn_b ALTER COLUMN qty SET NOT NULL");
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(await ShapeAsync("pnn_b"), await ShapeAsync("pnn_a"));
        Assert.Contains("T_2022_eu qty notnull=true", await ShapeAsync("pnn_a"), StringComparison.Ordinal);
        foreach (var held in observer.VerboseMessages.Where(m => m.Contains("held locks for", StringComparison.Ordinal)))
        {
            _output.WriteLine(held);
        }
    }

    [Fact]
    public async Task Undo_drops_the_check_from_every_level_and_nulls_in_any_partition_are_counted()
    {
        await PartitionedTrees.CreateAsync(_db, "pnn_u");
        var engine = Engines.For(_db);
        var before = await ShapeAsync("pnn_u");

        var expanded = await engine.RunAsync(await engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", "pnn_u", "qty")));
        var undone = await engine.UndoAsync(expanded.Id);

        Assert.Equal(MigrationPhase.Undone, undone.Phase);
        Assert.Equal(before, await ShapeAsync("pnn_u"));

        await _db.ExecuteAsync("UPDATE pnn_u SET qty = NULL WHERE id IN (10, 20, 30)");
        var error = await Assert.ThrowsAsync<ZdtException>(() => engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", "pnn_u", "qty")));
        Assert.Equal("NullsPresent", error.ErrorId);
        Assert.Equal(3L, error.TargetObject);
    }
}
