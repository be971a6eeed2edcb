using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Support;

/// <summary>Builds engines against a test database with test-friendly lock settings.</summary>
public static class Engines
{
    public static MigrationEngine For(TestDatabase db, RecordingObserver? observer = null, EngineOptions? options = null)
        => new(ConnectionTarget.Resolve(db.ConnectionString), options ?? Fast, observer);

    /// <summary>Short lock timeouts and retry pauses so lock tests finish quickly.</summary>
    public static EngineOptions Fast { get; } = new()
    {
        LockTimeout = TimeSpan.FromMilliseconds(100),
        LockRetryTimeout = TimeSpan.FromSeconds(30),
        LockRetryInitialDelay = TimeSpan.FromMilliseconds(50),
        LockRetryMaxDelay = TimeSpan.FromMilliseconds(300),
    };

    /// <summary>Plans and runs a table rename, as New-TableRename does.</summary>
    public static async Task<Migration> RenameTableAsync(this MigrationEngine engine, string table, string newName, string schema = "public")
        => await engine.RunAsync(await engine.PlanTableRenameAsync(new TableRenameRequest(schema, table, newName)));

    public static async Task<Migration> RenameColumnAsync(this MigrationEngine engine, string table, string column, string newName, string schema = "public")
        => await engine.RunAsync(await engine.PlanColumnRenameAsync(new ColumnRenameRequest(schema, table, column, newName)));

    public static async Task<Migration> BackfillAsync(this MigrationEngine engine, long id, ZeroDowntime.Engine.Backfill.BackfillOptions? options = null, CancellationToken ct = default)
        => await engine.RunBackfillAsync(await engine.PlanBackfillAsync(id, ct), options ?? new ZeroDowntime.Engine.Backfill.BackfillOptions { BatchSize = 500 }, ct);

    /// <summary>Expand, backfill, parity, as a DBA runs them before the new application version ships.</summary>
    public static async Task<Migration> RenameColumnUpToVerifiedAsync(this MigrationEngine engine, string table, string column, string newName, string schema = "public")
    {
        var migration = await engine.RenameColumnAsync(table, column, newName, schema);
        await engine.BackfillAsync(migration.Id);
        var parity = await engine.TestColumnParityAsync(migration.Id);
        Assert.True(parity.InParity, parity.ToString());
        return migration;
    }

    public static async Task<Migration> CompleteAsync(this MigrationEngine engine, long id)
        => await engine.RunAsync(await engine.PlanContractAsync(id));

    public static async Task<Migration> UndoAsync(this MigrationEngine engine, long id)
        => await engine.RunAsync(await engine.PlanUndoAsync(id));
}
