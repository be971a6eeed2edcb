using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests.Partitions;

/// <summary>
/// The keys a column copy carries on a partitioned table: a unique constraint (each partition's
/// index built concurrently and constrained USING INDEX, then adopted by the parent's ADD), a
/// foreign key (each partition NOT VALID and validated, then attached by the parent's ADD) and,
/// for a type change, the primary key (each partition's new index built concurrently, made the
/// partition's key in the swap and adopted by the parent's ADD PRIMARY KEY). Writes in every phase
/// through INSERT, explicit NULL, COPY, ON CONFLICT, UPDATE and DELETE; a partition created
/// mid-migration; the end state is the plain statement's on a twin, every partition's names included.
/// </summary>
public class PartitionedKeyCopyTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public PartitionedKeyCopyTests(TestDatabase db)
    {
        _db = db;
    }

    private Task<long> CountAsync(string sql) => _db.ScalarAsync<long>(sql);

    private static string Sorted(string shape) => string.Join("\n", shape.Split('\n').Order(StringComparer.Ordinal));

    private Task<string?> RowsAsync(string tree, string column) => _db.ScalarAsync<string>($"SELECT md5(string_agg(format('%s|%s|%s|%s|%s', id, created, region, {column}, note), ',' ORDER BY id, created)) FROM {tree}");

    /// <summary>The same writes on a tree through <paramref name="column"/> (the old or the new name): values, an explicit NULL, COPY with a value and a NULL, ON CONFLICT on the primary key, updates, deletes.</summary>
    private async Task WriteAsync(string tree, string column, int phase)
    {
        var id = 100_000 + (phase * 10);
        await _db.ExecuteAsync($"""
            INSERT INTO {tree} (id, created, region, {column}) VALUES ({id}, '2021-02-03', 'us', {phase}), ({id + 1}, '2022-02-03', 'eu', NULL);
            INSERT INTO {tree} (id, created, region) VALUES ({id + 2}, '2020-02-03', 'us');
            UPDATE {tree} SET {column} = {column} + 1000 WHERE id % 101 = {phase};
            UPDATE {tree} SET {column} = NULL WHERE id % 103 = {phase};
            UPDATE {tree} SET note = 'n{phase}' WHERE id % 107 = {phase};
            INSERT INTO {tree} (id, created, region, {column}) VALUES (7, '2020-01-08', 'us', {phase}) ON CONFLICT (id, created, region) DO UPDATE SET {column} = excluded.{column} + 1, note = 'c{phase}';
            DELETE FROM {tree} WHERE id % 499 = {phase};
            """);
        await using var connection = await _db.OpenAsync();
        await using var writer = await connection.BeginTextImportAsync($"COPY {tree} (id, created, region, {column}) FROM STDIN");
        await writer.WriteAsync($"{id + 3}\t2021-03-04\tus\t{phase + 2}\n{id + 4}\t2022-03-04\tother\t\\N\n");
    }

    /// <summary>
    /// A tree of <see cref="PartitionedTrees.CreateAsync"/> with an integer id, the primary key
    /// (id, created, region), a unique constraint and a foreign key on qty, and a foreign key on id.
    /// </summary>
    private async Task CreateAsync(string tree)
    {
        await PartitionedTrees.CreateAsync(_db, tree);
        await _db.ExecuteAsync($"""
            CREATE TABLE IF NOT EXISTS pkc_units (id integer PRIMARY KEY);
            INSERT INTO pkc_units SELECT generate_series(0, 200000) ON CONFLICT DO NOTHING;
            ALTER TABLE {tree} ALTER COLUMN id TYPE integer;
            UPDATE {tree} SET qty = id;
            ALTER TABLE {tree} ADD PRIMARY KEY (id, created, region);
            ALTER TABLE {tree} ADD CONSTRAINT {tree}_qty_created_region_key UNIQUE (qty, created, region);
            ALTER TABLE {tree} ADD CONSTRAINT {tree}_qty_fkey FOREIGN KEY (qty) REFERENCES pkc_units (id);
            ALTER TABLE {tree} ADD CONSTRAINT {tree}_id_fkey FOREIGN KEY (id) REFERENCES pkc_units (id);
            """);
    }

    [Fact]
    public async Task A_copy_rename_carries_a_unique_constraint_and_a_foreign_key_to_every_partition_as_the_plain_rename_leaves_them()
    {
        await CreateAsync("pkc_ra");
        await CreateAsync("pkc_rb");
        var engine = Engines.For(_db);

        var plan = await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", "pkc_ra", "qty", "amount"));
        var statements = plan.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Contains("CREATE UNIQUE INDEX CONCURRENTLY \"pkc_ra_2022_eu_amount_created_region_key\" ON \"public\".\"pkc_ra_2022_eu\" (\"amount\", \"created\", \"region\")", statements);
        Assert.Contains("ALTER TABLE \"public\".\"pkc_ra\" ADD CONSTRAINT \"pkc_ra_amount_created_region_key\" UNIQUE (\"amount\", \"created\", \"region\")", statements);
        Assert.DoesNotContain(statements, s => s.Contains("FOREIGN KEY", StringComparison.Ordinal));
        var expanded = await engine.RunAsync(plan);
        Assert.Equal(MigrationPhase.Expanded, expanded.Phase);
        Assert.Equal(6L, await CountAsync("SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('pkc_ra') t ON t.relid = c.conrelid WHERE c.contype = 'u' AND c.conname LIKE '%amount%' AND c.conparentid <> 0"));

        await WriteAsync("pkc_ra", "qty", 1);
        await WriteAsync("pkc_rb", "qty", 1);
        await _db.ExecuteAsync("CREATE TABLE pkc_ra_2024 PARTITION OF pkc_ra FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        await _db.ExecuteAsync("CREATE TABLE pkc_rb_2024 PARTITION OF pkc_rb FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        await _db.ExecuteAsync("INSERT INTO pkc_ra (id, created, region, amount) VALUES (9001, '2024-05-01', 'us', 5)");
        await _db.ExecuteAsync("INSERT INTO pkc_rb (id, created, region, qty) VALUES (9001, '2024-05-01', 'us', 5)");

        // The unique copy holds for the new version's writes as the original does for the old one's.
        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => _db.ExecuteAsync("INSERT INTO pkc_ra (id, created, region, amount) VALUES (9002, '2024-05-01', 'us', 5)"));

        Assert.Equal(MigrationPhase.Backfilled, (await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id), new BackfillOptions { BatchSize = 300 })).Phase);
        await WriteAsync("pkc_ra", "amount", 2);
        await WriteAsync("pkc_rb", "qty", 2);
        Assert.Equal(0L, (await engine.TestColumnParityAsync(expanded.Id)).Mismatches);
        await WriteAsync("pkc_ra", "qty", 3);
        await WriteAsync("pkc_rb", "qty", 3);

        var contract = await engine.PlanContractAsync(expanded.Id);
        var contractSql = contract.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Contains("ALTER TABLE \"public\".\"pkc_ra_2024\" ADD CONSTRAINT \"pkc_ra_amount_fkey\" FOREIGN KEY (\"amount\") REFERENCES pkc_units(id) NOT VALID", contractSql);
        Assert.Contains("ALTER TABLE \"public\".\"pkc_ra_2024\" VALIDATE CONSTRAINT \"pkc_ra_amount_fkey\"", contractSql);
        Assert.Contains("ALTER TABLE \"public\".\"pkc_ra\" ADD CONSTRAINT \"pkc_ra_amount_fkey\" FOREIGN KEY (\"amount\") REFERENCES pkc_units(id)", contractSql);
        Assert.Equal(MigrationPhase.Completed, (await engine.RunAsync(contract)).Phase);
        await _db.ExecuteAsync("ALTER TABLE pkc_rb RENAME COLUMN qty TO amount");
        await WriteAsync("pkc_ra", "amount", 4);
        await WriteAsync("pkc_rb", "amount", 4);

        // The copies take the new name where the old one was part of theirs (documented); the rest is the plain rename's.
        Assert.Equal(Sorted((await PartitionedTrees.ShapeAsync(_db, "pkc_rb")).Replace("qty", "amount", StringComparison.Ordinal)), Sorted(await PartitionedTrees.ShapeAsync(_db, "pkc_ra")));
        Assert.Equal(await RowsAsync("pkc_rb", "amount"), await RowsAsync("pkc_ra", "amount"));
        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => _db.ExecuteAsync("INSERT INTO pkc_ra (id, created, region, amount) VALUES (9003, '2024-05-03', 'us', 300000)"));
    }

    [Fact]
    public async Task A_type_change_of_a_primary_key_column_carries_the_key_a_unique_constraint_and_a_foreign_key_as_the_plain_ALTER_COLUMN_TYPE_leaves_them()
    {
        await CreateAsync("pkc_ta");
        await CreateAsync("pkc_tb");
        var engine = Engines.For(_db);

        var plan = await engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest("public", "pkc_ta", "id", "bigint"));
        var statements = plan.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Contains("CREATE UNIQUE INDEX CONCURRENTLY \"pkc_ta_2022_eu_pkey_zdt\" ON \"public\".\"pkc_ta_2022_eu\" USING btree (\"zdt_id_new\", created, region)", statements);
        Assert.DoesNotContain(plan.Steps, s => s.Lock == LockLevel.AccessExclusive && s.Statements.Any(x => x.Contains("PRIMARY KEY", StringComparison.Ordinal)));
        var expanded = await engine.RunAsync(plan);
        Assert.Equal(MigrationPhase.Expanded, expanded.Phase);

        await WriteAsync("pkc_ta", "qty", 1);
        await WriteAsync("pkc_tb", "qty", 1);

        // A partition manager's nightly partition: the shadow column and trigger come with it; its new key index is built by the contract.
        await _db.ExecuteAsync("CREATE TABLE pkc_ta_2024 PARTITION OF pkc_ta FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        await _db.ExecuteAsync("CREATE TABLE pkc_tb_2024 PARTITION OF pkc_tb FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        await _db.ExecuteAsync("INSERT INTO pkc_ta (id, created, region, qty) VALUES (9001, '2024-05-01', 'us', 5)");
        await _db.ExecuteAsync("INSERT INTO pkc_tb (id, created, region, qty) VALUES (9001, '2024-05-01', 'us', 5)");

        Assert.Equal(MigrationPhase.Backfilled, (await engine.RunBackfillAsync(await engine.PlanBackfillAsync(expanded.Id), new BackfillOptions { BatchSize = 300 })).Phase);
        await WriteAsync("pkc_ta", "qty", 2);
        await WriteAsync("pkc_tb", "qty", 2);
        Assert.Equal(0L, (await engine.TestColumnParityAsync(expanded.Id)).Mismatches);
        await WriteAsync("pkc_ta", "qty", 3);
        await WriteAsync("pkc_tb", "qty", 3);

        var contract = await engine.PlanContractAsync(expanded.Id);
        var contractSql = contract.Steps.SelectMany(s => s.Statements).ToList();
        Assert.Contains(contractSql, s => s.StartsWith("CREATE UNIQUE INDEX CONCURRENTLY \"pkc_ta_2024_pkey_zdt\" ON \"public\".\"pkc_ta_2024\"", StringComparison.Ordinal));
        var swap = contract.Steps[^1].Statements;
        Assert.Contains("ALTER TABLE \"public\".\"pkc_ta_2024\" ADD CONSTRAINT \"pkc_ta_2024_pkey\" PRIMARY KEY USING INDEX \"pkc_ta_2024_pkey_zdt\"", swap);
        Assert.Contains("ALTER TABLE \"public\".\"pkc_ta\" ADD CONSTRAINT \"pkc_ta_pkey\" PRIMARY KEY (\"id\", \"created\", \"region\")", swap);
        Assert.Equal(MigrationPhase.Completed, (await engine.RunAsync(contract)).Phase);
        await _db.ExecuteAsync("ALTER TABLE pkc_tb ALTER COLUMN id TYPE bigint");

        Assert.Equal("bigint", await _db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'pkc_ta_2022_eu'::regclass AND attname = 'id'"));
        await WriteAsync("pkc_ta", "qty", 4);
        await WriteAsync("pkc_tb", "qty", 4);

        Assert.Equal(Sorted(await PartitionedTrees.ShapeAsync(_db, "pkc_tb")), Sorted(await PartitionedTrees.ShapeAsync(_db, "pkc_ta")));
        Assert.Equal(await RowsAsync("pkc_tb", "qty"), await RowsAsync("pkc_ta", "qty"));
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pg_class WHERE relname LIKE 'pkc_ta%zdt%'"));
    }

    [Fact]
    public async Task A_key_with_INCLUDE_columns_is_refused_before_anything_changes()
    {
        await PartitionedTrees.CreateAsync(_db, "pkc_inc");
        await _db.ExecuteAsync("UPDATE pkc_inc SET qty = id; ALTER TABLE pkc_inc ADD CONSTRAINT pkc_inc_qty_key UNIQUE (qty, created, region) INCLUDE (note)");
        var before = await PartitionedTrees.ShapeAsync(_db, "pkc_inc");
        var refused = await Assert.ThrowsAsync<ZdtException>(() => Engines.For(_db).PlanColumnRenameAsync(new ColumnRenameRequest("public", "pkc_inc", "qty", "amount")));
        Assert.Equal(ErrorIds.ColumnCannotBeCopied, refused.ErrorId);
        Assert.Contains("a key with INCLUDE columns (\"pkc_inc_qty_key\")", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, await PartitionedTrees.ShapeAsync(_db, "pkc_inc"));
    }
}
