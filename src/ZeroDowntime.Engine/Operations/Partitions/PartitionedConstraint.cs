using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.Partitions;

/// <summary>
/// A validated CHECK or FOREIGN KEY on a partitioned table without a scan under a strong lock.
/// CHECK: ADD CONSTRAINT NOT VALID on the parent takes ACCESS EXCLUSIVE on every partition, and
/// VALIDATE on the parent scans every partition in one long transaction. Instead: each leaf partition gets the check NOT
/// VALID (ACCESS EXCLUSIVE on that partition, ms) and VALIDATE (SHARE UPDATE EXCLUSIVE on that
/// partition: reads and writes go on), one partition at a time; then each partitioned level,
/// deepest first, ADD ... NOT VALID (PostgreSQL merges it with the partitions' equal checks:
/// ACCESS EXCLUSIVE on that level and its partitions, ms) and VALIDATE, which scans nothing since
/// every partition's check is already valid. The same on PostgreSQL 13..17. Planned from the
/// catalog (per relation: present, validated), so a phase run again continues where it stopped.
/// FOREIGN KEY: PostgreSQL 13..17 refuse ADD ... NOT VALID on a partitioned table (allowed from 18),
/// and the plain ADD on the parent validates every partition under SHARE ROW EXCLUSIVE (writes
/// stop for the whole scan). Instead each leaf partition gets the key NOT VALID and VALIDATE (as a
/// plain table), then the parent the plain ADD: PostgreSQL attaches each partition's equal, valid
/// key instead of checking its rows (see <see cref="AddForeignKey"/>).
/// </summary>
internal sealed class PartitionedConstraint
{
    private readonly PartitionTree _tree;
    private readonly string _name;
    private readonly IReadOnlyDictionary<uint, Found> _found;

    private PartitionedConstraint(PartitionTree tree, string name, IReadOnlyDictionary<uint, Found> found)
    {
        _tree = tree;
        _name = name;
        _found = found;
    }

    private sealed record Found(bool Validated, bool Local);

    /// <summary>Reads which relations of the tree have the check <paramref name="name"/> on <paramref name="column"/>; a same-named constraint that is something else is refused.</summary>
    public static Task<PartitionedConstraint> ReadAsync(NpgsqlConnection connection, PartitionTree tree, string name, string column, CancellationToken ct)
        => ReadAsync(connection, tree, name, PartitionedConstraintKind.Check, column, ct);

    /// <summary>
    /// Reads which relations of the tree have the constraint <paramref name="name"/> of <paramref name="kind"/>
    /// (on exactly <paramref name="column"/> when given); a same-named constraint that is something else is refused.
    /// </summary>
    public static async Task<PartitionedConstraint> ReadAsync(NpgsqlConnection connection, PartitionTree tree, string name, PartitionedConstraintKind kind, string? column, CancellationToken ct)
    {
        const string sql = """
            SELECT c.conrelid, c.convalidated, c.conislocal,
                   c.contype::text = $4
                   AND ($3::text IS NULL OR c.conkey = ARRAY[(SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attname = $3)])
            FROM pg_constraint c
            WHERE c.conname = $1 AND c.conrelid = ANY($2)
            """;
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        cmd.Parameters.Add(new NpgsqlParameter { Value = tree.Nodes.Select(n => n.Oid).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Oid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)column ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = kind == PartitionedConstraintKind.Check ? "c" : "f" });
        var found = new Dictionary<uint, Found>();
        await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var oid = reader.GetFieldValue<uint>(0);
                if (!reader.GetBoolean(3))
                {
                    var node = tree.Nodes.First(n => n.Oid == oid);
                    throw new ZdtException(
                        ErrorIds.NameTaken,
                        ErrorKind.ResourceExists,
                        column is null
                            ? $"{node.QualifiedName} (a partition of {tree.Root.QualifiedName}) already has a constraint named {Ident.Quote(name)}. Choose another name; nothing was changed."
                            : $"{node.QualifiedName} already has a constraint named {Ident.Quote(name)}, which ZeroDowntime needs for the check on {Ident.Quote(column)}. Rename or drop it; nothing was changed.")
                    { TargetObject = name };
                }

                found[oid] = new Found(reader.GetBoolean(1), reader.GetBoolean(2));
            }
        }

        return new PartitionedConstraint(tree, name, found);
    }

    /// <summary>True when no relation of the tree has the constraint yet.</summary>
    public bool Absent => _found.Count == 0;

    /// <summary>True when the parent has the check, validated.</summary>
    public bool ValidOnParent => _found.TryGetValue(_tree.Root.Oid, out var f) && f.Validated;

    /// <summary>The steps still needed for a validated CHECK (<paramref name="expression"/>) on every level: leaves first, then partitioned levels deepest first.</summary>
    public IReadOnlyList<DdlStep> AddAndValidate(string expression)
    {
        var steps = new List<DdlStep>();
        var check = Ident.Quote(_name);
        var order = _tree.Leaves.Where(n => n.Kind != 'f').Concat(_tree.Nodes.Where(n => n.IsPartitioned).OrderByDescending(n => n.Level));
        foreach (var node in order)
        {
            var found = _found.GetValueOrDefault(node.Oid);
            if (found is null)
            {
                steps.Add(new DdlStep(
                    $"Add CHECK ({expression}) NOT VALID to {(node.IsPartitioned ? "the partitioned table" : "partition")} {node.QualifiedName}",
                    new[] { $"ALTER TABLE {node.QualifiedName} ADD CONSTRAINT {check} CHECK ({expression}) NOT VALID" },
                    LockLevel.AccessExclusive,
                    node.QualifiedName,
                    node.IsPartitioned
                        ? "a catalog change held for milliseconds on this level and its partitions, whose equal checks PostgreSQL merges with it (NOT VALID: nothing is scanned)"
                        : "NOT VALID skips the existing rows: a catalog change held for milliseconds on this partition only; from now on every row written to it is checked"));
            }

            if (found is not { Validated: true })
            {
                steps.Add(new DdlStep(
                    $"Validate the check {check} of {node.QualifiedName}",
                    new[] { $"ALTER TABLE {node.QualifiedName} VALIDATE CONSTRAINT {check}" },
                    LockLevel.ShareUpdateExclusive,
                    node.QualifiedName,
                    node.IsPartitioned
                        ? "every partition's check is already valid, so PostgreSQL scans nothing (SHARE UPDATE EXCLUSIVE: reads and writes go on)"
                        : "scans this partition only, under SHARE UPDATE EXCLUSIVE, which lets the application read and write meanwhile"));
            }
        }

        return steps;
    }

    /// <summary>
    /// The steps still needed for a validated foreign key (<paramref name="definition"/>: FOREIGN KEY
    /// ... REFERENCES ...) on the whole tree: each leaf NOT VALID (SHARE ROW EXCLUSIVE on that leaf
    /// and the referenced table, ms) and VALIDATE (SHARE UPDATE EXCLUSIVE on that leaf, ROW SHARE on
    /// the referenced table: reads and writes go on); then the plain ADD on the parent, which
    /// recurses through the tree and attaches each leaf's equal, valid key instead of checking its
    /// rows (sub-partitioned levels get theirs by the same recursion). Attaching drops the leaves'
    /// own referenced-side triggers, for which PostgreSQL 13..17 take ACCESS EXCLUSIVE on the
    /// referenced table: the step locks it up front, after the tree, for milliseconds.
    /// </summary>
    public IReadOnlyList<DdlStep> AddForeignKey(string definition, string referencedTable)
    {
        var steps = new List<DdlStep>();
        var key = Ident.Quote(_name);
        foreach (var leaf in _tree.Leaves)
        {
            var found = _found.GetValueOrDefault(leaf.Oid);
            if (found is null)
            {
                steps.Add(new DdlStep(
                    $"Add the foreign key {key} NOT VALID to partition {leaf.QualifiedName}",
                    new[] { $"ALTER TABLE {leaf.QualifiedName} ADD CONSTRAINT {key} {definition} NOT VALID" },
                    LockLevel.ShareRowExclusive,
                    leaf.QualifiedName,
                    $"NOT VALID skips the existing rows: a catalog change held for milliseconds, SHARE ROW EXCLUSIVE on this partition and {referencedTable}; rows written to the partition are checked from now on"));
            }

            if (found is not { Validated: true })
            {
                steps.Add(new DdlStep(
                    $"Validate the foreign key {key} of partition {leaf.QualifiedName}",
                    new[] { $"ALTER TABLE {leaf.QualifiedName} VALIDATE CONSTRAINT {key}" },
                    LockLevel.ShareUpdateExclusive,
                    leaf.QualifiedName,
                    "scans this partition only, under SHARE UPDATE EXCLUSIVE, which lets the application read and write meanwhile"));
            }
        }

        var root = _tree.Root;
        if (!_found.ContainsKey(root.Oid))
        {
            steps.Add(new DdlStep(
                $"Add the foreign key {key} to the partitioned table {root.QualifiedName}, attaching every partition's validated key",
                new[] { $"LOCK TABLE {referencedTable} IN ACCESS EXCLUSIVE MODE", $"ALTER TABLE {root.QualifiedName} ADD CONSTRAINT {key} {definition}" },
                LockLevel.ShareRowExclusive,
                root.QualifiedName,
                $"every partition already has this key, validated, so PostgreSQL attaches them and scans nothing: SHARE ROW EXCLUSIVE on the table and its partitions, ACCESS EXCLUSIVE on {referencedTable} (the partitions' own triggers there are replaced by the parent's), for milliseconds"));
        }

        return steps;
    }

    /// <summary>
    /// Drops the constraint everywhere: on each relation where it was added itself (conislocal), parents
    /// first; a parent's drop takes the merged checks of its partitions with it (ms each).
    /// </summary>
    public IReadOnlyList<DdlStep> Drop()
    {
        var steps = new List<DdlStep>();
        foreach (var node in _tree.Nodes.Where(n => _found.TryGetValue(n.Oid, out var f) && f.Local && !HasAncestorWithConstraint(n)))
        {
            steps.Add(new DdlStep(
                $"Drop the constraint {Ident.Quote(_name)} of {node.QualifiedName}",
                new[] { $"ALTER TABLE {node.QualifiedName} DROP CONSTRAINT {Ident.Quote(_name)}" },
                LockLevel.AccessExclusive,
                node.QualifiedName,
                "a catalog change held for milliseconds (on a partitioned level, on it and its partitions)"));
        }

        return steps;
    }

    private bool HasAncestorWithConstraint(PartitionNode node)
    {
        for (var parent = node.ParentOid; parent is { } oid; parent = _tree.Nodes.First(n => n.Oid == oid).ParentOid)
        {
            if (_found.ContainsKey(oid))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>The constraints a partitioned table gets level by level (pg_constraint.contype 'c' and 'f').</summary>
internal enum PartitionedConstraintKind
{
    Check,
    ForeignKey,
}
