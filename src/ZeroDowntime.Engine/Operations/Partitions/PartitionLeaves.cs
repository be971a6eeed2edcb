using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Operations.Partitions;

/// <summary>
/// The relations that hold a table's rows, for the work that reads or writes rows (the backfill,
/// the parity check): a plain table is its own, a partitioned table has none of its own (no
/// storage), so its rows are walked leaf partition by leaf partition, each with its own key.
/// </summary>
internal static class PartitionLeaves
{
    /// <summary>
    /// The table itself, or every leaf partition of a partitioned table in tree order (level by
    /// level, by name), read as tables. A leaf that is a foreign table is refused: its rows live on
    /// another server, which neither a key walk nor a page walk can reach.
    /// </summary>
    public static async Task<IReadOnlyList<TableInfo>> ReadAsync(PlanningContext context, TableInfo table, string why, CancellationToken ct)
    {
        if (table.Kind != RelationKind.PartitionedTable)
        {
            return new[] { table };
        }

        var tree = await PartitionTree.ReadAsync(context.Connection, table.Oid, ct).ConfigureAwait(false);
        if (tree.Leaves.FirstOrDefault(n => n.Kind == 'f') is { } foreign)
        {
            throw new ZdtException(
                ErrorIds.ForeignTablePartition,
                ErrorKind.InvalidOperation,
                $"{why}, but the partition {foreign.QualifiedName} of {table.QualifiedName} is a foreign table, whose rows live on another server and cannot be walked from here. Detach it first, or fill it on its own server. Nothing was changed.")
            { TargetObject = foreign.QualifiedName };
        }

        var leaves = new List<TableInfo>();
        foreach (var leaf in tree.Leaves)
        {
            // A partition detached since the tree was read is simply not walked: its rows are no longer the table's.
            if (await context.Catalog.ReadTableAsync(leaf.Oid, ct).ConfigureAwait(false) is { } info)
            {
                leaves.Add(info);
            }
        }

        return leaves;
    }

    /// <summary>
    /// Refuses, before anything changes, a table whose rows a backfill could not walk: the table
    /// itself, or each leaf partition by its own key (<see cref="BatchKey.RequireWalkable"/>;
    /// <paramref name="why"/> names the work, and the partition is named after it).
    /// </summary>
    public static async Task RequireWalkableAsync(PlanningContext context, TableInfo table, string why, CancellationToken ct)
    {
        foreach (var walked in await ReadAsync(context, table, why, ct).ConfigureAwait(false))
        {
            BatchKey.RequireWalkable(walked, context.ServerVersion, $"{why}{(walked.IsPartition ? $" of partition {walked.QualifiedName}" : "")}");
        }
    }
}
