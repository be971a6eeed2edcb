using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.Partitions;

/// <summary>One relation of a partition tree: the partitioned root, a sub-partitioned partition or a leaf.</summary>
internal sealed record PartitionNode(uint Oid, uint? ParentOid, int Level, char Kind, string Schema, string Name)
{
    public string QualifiedName => Ident.Qualify(Schema, Name);

    /// <summary>pg_class.relkind 'p': it has partitions of its own and no storage.</summary>
    public bool IsPartitioned => Kind == 'p';
}

/// <summary>
/// A declaratively partitioned table with every level of its partitions, as pg_partition_tree
/// (PostgreSQL 12+) gives it, and the partition key columns of each partitioned level (by name:
/// a sub-partition may number its columns differently when the parent has dropped columns).
/// </summary>
internal sealed class PartitionTree
{
    private readonly IReadOnlyDictionary<uint, IReadOnlyList<string?>> _keys;

    private PartitionTree(IReadOnlyList<PartitionNode> nodes, IReadOnlyDictionary<uint, IReadOnlyList<string?>> keys)
    {
        Nodes = nodes;
        _keys = keys;
    }

    /// <summary>Root first, then level by level, each level in name order.</summary>
    public IReadOnlyList<PartitionNode> Nodes { get; }

    public PartitionNode Root => Nodes[0];

    public IEnumerable<PartitionNode> Leaves => Nodes.Where(n => !n.IsPartitioned);

    public IEnumerable<PartitionNode> ChildrenOf(PartitionNode node) => Nodes.Where(n => n.ParentOid == node.Oid);

    /// <summary>A partitioned level's key columns; null stands for an expression in the key.</summary>
    public IReadOnlyList<string?> KeyOf(PartitionNode node) => _keys.TryGetValue(node.Oid, out var key) ? key : Array.Empty<string?>();

    /// <summary>
    /// PostgreSQL enforces uniqueness per partition only, so a unique index or constraint (and a
    /// primary key) on a partitioned table must contain every partition key column (of every
    /// level) as a plain key column, and no partition may be a foreign table. Said before anything
    /// is built, naming what is missing; <paramref name="what"/> is "unique index", "primary key", ...
    /// </summary>
    public void RequireUniqueKeyAllowed(IReadOnlyList<string> columns, string what)
    {
        foreach (var node in Nodes.Where(n => n.IsPartitioned))
        {
            var missing = KeyOf(node).Where(k => k is null || !columns.Contains(k, StringComparer.Ordinal)).ToList();
            if (missing.Count > 0)
            {
                var why = missing.Any(k => k is null)
                    ? $"its partition key contains an expression, which a {what} cannot cover"
                    : $"the {what}'s key columns lack {string.Join(", ", missing.Select(k => Ident.Quote(k!)))}, which {(missing.Count == 1 ? "is" : "are")} part of the partition key";
                throw new ZdtException(
                    ErrorIds.UniqueIndexNeedsPartitionKey,
                    ErrorKind.InvalidArgument,
                    $"A {what} on {node.QualifiedName} is not possible: {why}. PostgreSQL checks uniqueness within each partition only, so the key must contain every partition key column of every level as a plain column (-Columns, not -Include or an expression). Nothing was changed.")
                { TargetObject = node.QualifiedName };
            }
        }

        if (Nodes.FirstOrDefault(n => n.Kind == 'f') is { } foreign)
        {
            throw new ZdtException(
                ErrorIds.UniqueIndexNeedsPartitionKey,
                ErrorKind.InvalidArgument,
                $"A {what} on {Root.QualifiedName} is not possible: its partition {foreign.QualifiedName} is a foreign table, which cannot have an index. Nothing was changed.")
            { TargetObject = foreign.QualifiedName };
        }
    }

    public static async Task<PartitionTree> ReadAsync(NpgsqlConnection connection, uint rootOid, CancellationToken ct)
    {
        const string treeSql = """
            SELECT t.relid::oid, t.parentrelid::oid, t.level, c.relkind::text, n.nspname, c.relname
            FROM pg_partition_tree($1::oid::regclass) t
            JOIN pg_class c ON c.oid = t.relid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            ORDER BY t.level, n.nspname, c.relname
            """;
        var nodes = new List<PartitionNode>();
        await using (var cmd = new NpgsqlCommand(treeSql, connection))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = rootOid, NpgsqlDbType = NpgsqlDbType.Oid });
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                nodes.Add(new PartitionNode(
                    reader.GetFieldValue<uint>(0),
                    reader.IsDBNull(1) ? null : reader.GetFieldValue<uint>(1),
                    reader.GetInt32(2),
                    reader.GetString(3)[0],
                    reader.GetString(4),
                    reader.GetString(5)));
            }
        }

        if (nodes.Count == 0)
        {
            throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, "The partitioned table is gone. Nothing was changed.");
        }

        const string keySql = """
            SELECT pt.partrelid, k.ord, a.attname
            FROM pg_partitioned_table pt
            CROSS JOIN LATERAL unnest(pt.partattrs::int2[]) WITH ORDINALITY AS k(attnum, ord)
            LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum AND k.attnum > 0
            WHERE pt.partrelid = ANY($1)
            ORDER BY pt.partrelid, k.ord
            """;
        var keys = new Dictionary<uint, List<string?>>();
        await using (var cmd = new NpgsqlCommand(keySql, connection))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = nodes.Where(n => n.IsPartitioned).Select(n => n.Oid).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Oid });
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var oid = reader.GetFieldValue<uint>(0);
                if (!keys.TryGetValue(oid, out var list))
                {
                    keys[oid] = list = new List<string?>();
                }

                list.Add(reader.IsDBNull(2) ? null : reader.GetString(2));
            }
        }

        return new PartitionTree(nodes, keys.ToDictionary(k => k.Key, k => (IReadOnlyList<string?>)k.Value));
    }
}
