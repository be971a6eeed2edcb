using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;

// A process that runs one phase of a migration through the engine, as a cmdlet would, so the
// fault-path tests can kill it (SIGKILL) in the middle of the phase and look at what is left.
//   FaultHost <connection string> expand-rename <table> <column> <new name>
//   FaultHost <connection string> add-column <table> <column> <type> <default> <not null: true|false>
//   FaultHost <connection string> set-not-null <table> <column>
//   FaultHost <connection string> backfill <id> <batch size> <delay ms>
//   FaultHost <connection string> contract <id>
//   FaultHost <connection string> undo <id>
// Prints "PHASE <phase>" on success or "ERROR <error id>: <message>" and exits 0 or 1.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: FaultHost <connection string> <verb> <arguments>");
    return 2;
}

var options = new EngineOptions
{
    LockTimeout = TimeSpan.FromMilliseconds(100),
    LockRetryTimeout = TimeSpan.FromSeconds(30),
    LockRetryInitialDelay = TimeSpan.FromMilliseconds(50),
    LockRetryMaxDelay = TimeSpan.FromMilliseconds(300),
};
var engine = new MigrationEngine(ConnectionTarget.Resolve(args[0]), options);
var a = args[2..];
try
{
    var migration = args[1] switch
    {
        "expand-rename" => await engine.RunAsync(await engine.PlanColumnRenameAsync(new ColumnRenameRequest("public", a[0], a[1], a[2]))),
        "add-column" => await engine.RunAsync(await engine.PlanAddColumnAsync(new AddColumnRequest("public", a[0], a[1], a[2], a[3], bool.Parse(a[4])))),
        "expand-type" => await engine.RunAsync(await engine.PlanColumnTypeChangeAsync(new ColumnTypeChangeRequest("public", a[0], a[1], a[2]) { Cascade = bool.Parse(a[3]) })),
        "set-not-null" => await engine.RunAsync(await engine.PlanSetColumnNotNullAsync(new SetColumnNotNullRequest("public", a[0], a[1]))),
        "backfill" => await engine.RunBackfillAsync(
            await engine.PlanBackfillAsync(long.Parse(a[0])),
            new BackfillOptions { BatchSize = int.Parse(a[1]), Delay = TimeSpan.FromMilliseconds(int.Parse(a[2])) }),
        "contract" => await engine.RunAsync(await engine.PlanContractAsync(long.Parse(a[0]))),
        "undo" => await engine.RunAsync(await engine.PlanUndoAsync(long.Parse(a[0]))),
        _ => throw new ArgumentException($"unknown verb {args[1]}"),
    };
    Console.WriteLine($"PHASE {migration.Phase}");
    return 0;
}
catch (ZdtException e)
{
    Console.WriteLine($"ERROR {e.ErrorId}: {e.Message}");
    return 1;
}
