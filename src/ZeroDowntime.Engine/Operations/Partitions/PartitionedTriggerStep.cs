using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine.Operations.Partitions;

/// <summary>
/// Row triggers on a partitioned table, installed in a transaction of their own after the ACCESS
/// EXCLUSIVE one that added the columns they use. PostgreSQL clones a row trigger on the parent to
/// every partition (also to one created or attached later), which on a table of many partitions
/// costs as much as adding the columns, and CREATE TRIGGER needs only SHARE ROW EXCLUSIVE: reads
/// go on while it runs, only writes wait. A write between the two transactions meets no trigger;
/// each operation says why that is safe for it (docs/architecture.md, "Partitioned tables").
/// </summary>
internal static class PartitionedTriggerStep
{
    /// <param name="what">What the triggers are, for the step's title ("the sync trigger").</param>
    /// <param name="table">The partitioned table, quoted and qualified.</param>
    /// <param name="statements">The trigger function(s) and the CREATE TRIGGER statements.</param>
    public static DdlStep Create(string what, string table, IReadOnlyList<string> statements)
        => new(
            $"Install {what} (cloned to every partition)",
            statements,
            LockLevel.ShareRowExclusive,
            table,
            "CREATE TRIGGER takes SHARE ROW EXCLUSIVE on the parent and every partition (LOCK TABLE locks them all first): writes wait for this catalog change of milliseconds, reads do not; a separate transaction from the ADD COLUMN so that ACCESS EXCLUSIVE is held only for the column");
}
