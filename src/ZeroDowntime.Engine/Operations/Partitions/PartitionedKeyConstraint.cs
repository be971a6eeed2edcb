using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.Partitions;

/// <summary>
/// A UNIQUE constraint or PRIMARY KEY on a partitioned table without building an index under a
/// lock that stops writes. ADD CONSTRAINT ... USING INDEX is refused on a partitioned table, and
/// the plain ADD on the parent builds every partition's index under SHARE. Instead, per leaf
/// partition: CREATE UNIQUE INDEX CONCURRENTLY (SHARE UPDATE EXCLUSIVE on that partition) and ADD
/// CONSTRAINT ... USING INDEX (ACCESS EXCLUSIVE on that partition, ms: the index is built); then
/// the plain ADD on the parent, which recurses through the tree and adopts each partition's equal
/// constraint index instead of building one (sub-partitioned levels get theirs by the same
/// recursion; they have no rows). The partitions' constraints are named as the plain ADD on the
/// parent names them (partition_columns_key, partition_pkey), so the end state is the same.
/// The same on PostgreSQL 13..17.
/// </summary>
internal sealed class PartitionedKeyConstraint
{
    private readonly PartitionTree _tree;
    private readonly string _name;
    private readonly string _keyword;
    private readonly IReadOnlyList<string> _columns;
    private readonly IReadOnlyList<(PartitionNode Leaf, string Name)> _leafNames;
    private readonly string _options;

    private PartitionedKeyConstraint(PartitionTree tree, string name, string keyword, IReadOnlyList<string> columns, IReadOnlyList<(PartitionNode, string)> leafNames, string options)
    {
        _tree = tree;
        _name = name;
        _keyword = keyword;
        _columns = columns;
        _leafNames = leafNames;
        _options = options;
    }

    /// <summary>
    /// Plans the constraint <paramref name="name"/> (PRIMARY KEY or UNIQUE, <paramref name="primary"/>)
    /// on <paramref name="columns"/>, choosing each leaf's name; <paramref name="options"/> follow
    /// each ADD (" DEFERRABLE [INITIALLY DEFERRED]", or empty).
    /// </summary>
    public static async Task<PartitionedKeyConstraint> PlanAsync(PlanningContext context, PartitionTree tree, string name, bool primary, IReadOnlyList<string> columns, CancellationToken ct, string options = "")
    {
        var suffix = primary ? "pkey" : string.Join("_", columns) + "_key";
        var chosen = new HashSet<string>(StringComparer.Ordinal);
        var leafNames = new List<(PartitionNode, string)>();
        foreach (var leaf in tree.Leaves)
        {
            leafNames.Add((leaf, await PartitionedIndexBuild.ChoosePartitionIndexNameAsync(context, leaf, suffix, chosen, ct).ConfigureAwait(false)));
        }

        return new PartitionedKeyConstraint(tree, name, primary ? "PRIMARY KEY" : "UNIQUE", columns, leafNames, options);
    }

    private string ColumnList => string.Join(", ", _columns.Select(Ident.Quote));

    public IReadOnlyList<DdlStep> Steps(PlanningContext context)
    {
        var steps = new List<DdlStep>();
        foreach (var (leaf, name) in _leafNames)
        {
            steps.Add(PartitionedIndexBuild.ConcurrentLeafStep(context, leaf, name, $"CREATE UNIQUE INDEX CONCURRENTLY {Ident.Quote(name)} ON {leaf.QualifiedName} ({ColumnList})", rebuild: false, "the unique index"));
            steps.Add(new DdlStep(
                $"Attach the index as the {_keyword} constraint {Ident.Quote(name)} of partition {leaf.QualifiedName}",
                new[] { $"ALTER TABLE {leaf.QualifiedName} ADD CONSTRAINT {Ident.Quote(name)} {_keyword} USING INDEX {Ident.Quote(name)}{_options}" },
                LockLevel.AccessExclusive,
                leaf.QualifiedName,
                "the index is already built and valid, so this is a catalog change held for milliseconds on this partition only"));
        }

        var root = _tree.Root;
        steps.Add(new DdlStep(
            $"Add the {_keyword} constraint {Ident.Quote(_name)} to the partitioned table {root.QualifiedName}, adopting every partition's",
            new[] { $"ALTER TABLE {root.QualifiedName} ADD CONSTRAINT {Ident.Quote(_name)} {_keyword} ({ColumnList}){_options}" },
            LockLevel.AccessExclusive,
            root.QualifiedName,
            "every partition already has an equal constraint index, so PostgreSQL adopts them and builds nothing: ACCESS EXCLUSIVE on the partitioned table alone (it has no rows), SHARE on each partition, for milliseconds")
        {
            LocksTargetOnly = true,
        });
        return steps;
    }

    /// <summary>
    /// What a failed run left, from the catalog: the parent's constraint (its drop takes every
    /// adopted partition constraint with it), else each leaf's constraint or index of the planned name.
    /// </summary>
    public async Task<IReadOnlyList<DdlStep>> RollbackAsync(PlanningContext context, CancellationToken ct)
    {
        var root = _tree.Root;
        var rootIndex = Ident.Qualify(root.Schema, _name);
        var present = await IndexStates.ReadAsync(context.Connection, _leafNames.Select(l => Ident.Qualify(l.Leaf.Schema, l.Name)).Prepend(rootIndex), ct).ConfigureAwait(false);
        if (present.TryGetValue(rootIndex, out var rootState) && rootState.BacksKey)
        {
            return new[] { DropConstraint(root, _name) };
        }

        var steps = new List<DdlStep>();
        foreach (var (leaf, name) in _leafNames)
        {
            var index = Ident.Qualify(leaf.Schema, name);
            if (!present.TryGetValue(index, out var state))
            {
                continue;
            }

            steps.Add(state.BacksKey
                ? DropConstraint(leaf, name)
                : new DdlStep(
                    $"Drop the index {index} built for the constraint",
                    new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {index}" },
                    LockLevel.ShareUpdateExclusive,
                    leaf.QualifiedName,
                    "drops the partition's index without blocking reads or writes")
                {
                    Transactional = false,
                    LockTimeout = context.ConcurrentLockTimeout,
                });
        }

        return steps;
    }

    private static DdlStep DropConstraint(PartitionNode node, string name)
        => new(
            $"Drop the half-added constraint {Ident.Quote(name)} of {node.QualifiedName}",
            new[] { $"ALTER TABLE {node.QualifiedName} DROP CONSTRAINT {Ident.Quote(name)}" },
            LockLevel.AccessExclusive,
            node.QualifiedName,
            "a catalog change held for milliseconds (on a partitioned table, on it and its partitions); the constraint's index goes with it");
}
