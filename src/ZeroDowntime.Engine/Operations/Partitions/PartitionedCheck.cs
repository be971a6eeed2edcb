using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.Partitions;

/// <summary>
/// A validated CHECK on a partitioned table without a scan under a strong lock. ADD CONSTRAINT
/// NOT VALID on the parent takes ACCESS EXCLUSIVE on every partition, and VALIDATE on the parent
/// scans every partition in one long transaction. Instead: each leaf partition gets the check NOT
/// VALID (ACCESS EXCLUSIVE on that partition, ms) and VALIDATE (SHARE UPDATE EXCLUSIVE on that
/// partition: reads and writes go on), one partition at a time; then each partitioned level,
/// deepest first, ADD ... NOT VALID (PostgreSQL merges it with the partitions' equal checks:
/// ACCESS EXCLUSIVE on that level and its partitions, ms) and VALIDATE, which scans nothing since
/// every partition's check is already valid. The same on PostgreSQL 13..17. Planned from the
/// catalog (per relation: present, validated), so a phase run again continues where it stopped.
/// </summary>
internal sealed class PartitionedCheck
{
    private readonly PartitionTree _tree;
    private readonly string _name;
    private readonly IReadOnlyDictionary<uint, Found> _found;

    private PartitionedCheck(PartitionTree tree, string name, IReadOnlyDictionary<uint, Found> found)
    {
        _tree = tree;
        _name = name;
        _found = found;
    }

    private sealed record Found(bool Validated, bool Local);

    /// <summary>Reads which relations of the tree have the check <paramref name="name"/> on <paramref name="column"/>; a same-named constraint that is something else is refused.</summary>
    public static async Task<PartitionedCheck> ReadAsync(NpgsqlConnection connection, PartitionTree tree, string name, string column, CancellationToken ct)
    {
        const string sql = """
            SELECT c.conrelid, c.convalidated, c.conislocal,
                   c.contype = 'c' AND c.conkey = ARRAY[(SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attname = $3)]
            FROM pg_constraint c
            WHERE c.conname = $1 AND c.conrelid = ANY($2)
            """;
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        cmd.Parameters.Add(new NpgsqlParameter { Value = tree.Nodes.Select(n => n.Oid).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Oid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = column });
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
                        $"{node.QualifiedName} already has a constraint named {Ident.Quote(name)}, which ZeroDowntime needs for the check on {Ident.Quote(column)}. Rename or drop it; nothing was changed.")
                    { TargetObject = name };
                }

                found[oid] = new Found(reader.GetBoolean(1), reader.GetBoolean(2));
            }
        }

        return new PartitionedCheck(tree, name, found);
    }

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
    /// Drops the check everywhere: on each relation where it was added itself (conislocal), parents
    /// first; a parent's drop takes the merged checks of its partitions with it (ms each).
    /// </summary>
    public IReadOnlyList<DdlStep> Drop()
    {
        var steps = new List<DdlStep>();
        foreach (var node in _tree.Nodes.Where(n => _found.TryGetValue(n.Oid, out var f) && f.Local && !HasAncestorWithCheck(n)))
        {
            steps.Add(new DdlStep(
                $"Drop the check {Ident.Quote(_name)} of {node.QualifiedName}",
                new[] { $"ALTER TABLE {node.QualifiedName} DROP CONSTRAINT {Ident.Quote(_name)}" },
                LockLevel.AccessExclusive,
                node.QualifiedName,
                "a catalog change held for milliseconds (on a partitioned level, on it and its partitions)"));
        }

        return steps;
    }

    private bool HasAncestorWithCheck(PartitionNode node)
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
