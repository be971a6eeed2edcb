using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.Partitions;

/// <summary>
/// What a partitioned index is, independently of its name and table: the same <see cref="Tail"/>
/// (pg_get_indexdef from " USING " on: method, keys, INCLUDE, predicate) and uniqueness make two
/// indexes equivalent, which is also what ALTER INDEX ... ATTACH PARTITION accepts.
/// </summary>
/// <param name="Name">The parent index's name (in the partitioned table's schema).</param>
/// <param name="Unique">Whether it is a unique index.</param>
/// <param name="Tail">pg_get_indexdef of the index from " USING " on.</param>
/// <param name="NameSuffix">PostgreSQL's own choice of column part and label (e.g. "a_b_idx"), appended to a partition's name as a plain CREATE INDEX on the parent names the partitions' indexes.</param>
/// <param name="CreateSql">The CREATE INDEX statement for (table clause, quoted index name, concurrently); the table clause may be "ONLY t".</param>
internal sealed record PartitionedIndexShape(string Name, bool Unique, string Tail, string NameSuffix, Func<string, string, bool, string> CreateSql)
{
    /// <summary>The part of a pg_get_indexdef text that says what the index is, without its name and table.</summary>
    public static string TailOf(string indexDefinition)
    {
        var at = indexDefinition.IndexOf(" USING ", StringComparison.Ordinal);
        return at < 0 ? indexDefinition : indexDefinition[(at + 1)..];
    }
}

/// <summary>
/// Plans an index on a partitioned table without blocking the application: CREATE INDEX
/// CONCURRENTLY cannot run on a partitioned table, and a plain CREATE INDEX there builds every
/// partition's index under SHARE (writes stop for the whole build). Instead: the parent index
/// ON ONLY (INVALID, SHARE on the parent alone for milliseconds: it has no rows), each
/// sub-partitioned level the same way, attached at once; each leaf partition's index CONCURRENTLY;
/// each attached (ALTER INDEX ... ATTACH PARTITION: ACCESS EXCLUSIVE on the partition's index only,
/// milliseconds); once every partition has its index, PostgreSQL marks the parent valid. Planned
/// from the catalog, so a run stopped half way is continued by planning again: partitions whose
/// index is attached are skipped, an equivalent unattached index is attached (as PostgreSQL's own
/// CREATE INDEX on the parent does), an INVALID leftover of a killed build is rebuilt.
/// </summary>
internal sealed class PartitionedIndexBuild
{
    private readonly PlanningContext _context;
    private readonly PartitionTree _tree;
    private readonly PartitionedIndexShape _shape;
    private readonly IReadOnlyList<ExistingIndex> _existing;
    private readonly HashSet<string> _chosenNames = new(StringComparer.Ordinal);
    private readonly List<DdlStep> _steps = new();

    private PartitionedIndexBuild(PlanningContext context, PartitionTree tree, PartitionedIndexShape shape, IReadOnlyList<ExistingIndex> existing)
    {
        _context = context;
        _tree = tree;
        _shape = shape;
        _existing = existing;
    }

    private sealed record ExistingIndex(uint Oid, uint TableOid, string Schema, string Name, bool Valid, bool Unique, string Tail, uint? ParentIndex, bool BacksConstraint)
    {
        public string QualifiedName => Ident.Qualify(Schema, Name);
    }

    /// <summary>True when the parent index already exists as an unfinished build of this same index (INVALID, equivalent): planning continues it.</summary>
    public bool ContinuesUnfinishedBuild { get; private set; }

    /// <summary>The steps still to run, in order; empty when the index is complete.</summary>
    public IReadOnlyList<DdlStep> Steps => _steps;

    public static async Task<PartitionedIndexBuild> PlanAsync(PlanningContext context, PartitionTree tree, PartitionedIndexShape shape, CancellationToken ct)
    {
        var existing = await ReadIndexesAsync(context.Connection, tree.Nodes.Select(n => n.Oid).ToArray(), ct).ConfigureAwait(false);
        var build = new PartitionedIndexBuild(context, tree, shape, existing);
        await build.PlanAsync(ct).ConfigureAwait(false);
        return build;
    }

    /// <summary>The statement that drops a partitioned index and, with it, every partition's index.</summary>
    public static DdlStep DropStep(string qualifiedIndex, string qualifiedTable, string title)
        => new(
            title,
            new[] { $"DROP INDEX IF EXISTS {qualifiedIndex}" },
            LockLevel.AccessExclusive,
            qualifiedTable,
            "PostgreSQL cannot drop a partitioned index concurrently, nor detach a partition's index from it: the plain DROP takes ACCESS EXCLUSIVE on the table and every partition (LOCK TABLE first, under lock_timeout, so nobody queues behind a wait) for a catalog change of milliseconds");

    private async Task PlanAsync(CancellationToken ct)
    {
        var root = _tree.Root;
        var rootIndex = _existing.FirstOrDefault(i => i.TableOid == root.Oid && i.Schema == root.Schema && i.Name == _shape.Name);
        ContinuesUnfinishedBuild = rootIndex is { Valid: false, ParentIndex: null } && Matches(rootIndex);
        var parentIndexOf = new Dictionary<uint, (string Name, uint? Oid)>();
        if (rootIndex is null)
        {
            _steps.Add(OnlyStep(root, Ident.Quote(_shape.Name)));
            parentIndexOf[root.Oid] = (Ident.Qualify(root.Schema, _shape.Name), null);
        }
        else
        {
            parentIndexOf[root.Oid] = (rootIndex.QualifiedName, rootIndex.Oid);
        }

        // A foreign table cannot have an index; PostgreSQL's own CREATE INDEX on the parent skips it too.
        foreach (var node in _tree.Nodes.Skip(1).Where(n => n.Kind != 'f'))
        {
            var parent = parentIndexOf[node.ParentOid!.Value];
            var attached = parent.Oid is { } parentOid ? _existing.FirstOrDefault(i => i.TableOid == node.Oid && i.ParentIndex == parentOid) : null;
            if (attached is not null)
            {
                parentIndexOf[node.Oid] = (attached.QualifiedName, attached.Oid);
                continue;
            }

            var candidates = _existing.Where(i => i.TableOid == node.Oid && i.ParentIndex is null && !i.BacksConstraint && Matches(i)).ToList();
            var adoptable = candidates.FirstOrDefault(i => i.Valid || node.IsPartitioned);
            string index;
            uint? oid = null;
            if (adoptable is not null)
            {
                index = adoptable.QualifiedName;
                oid = adoptable.Oid;
            }
            else if (candidates.FirstOrDefault() is { } leftover)
            {
                // An INVALID index of a build that was killed: built again under its name.
                index = leftover.QualifiedName;
                _steps.Add(ConcurrentStep(node, leftover.Name, rebuild: true));
            }
            else
            {
                var name = await ChooseNameAsync(node, ct).ConfigureAwait(false);
                index = Ident.Qualify(node.Schema, name);
                _steps.Add(node.IsPartitioned ? OnlyStep(node, Ident.Quote(name)) : ConcurrentStep(node, name, rebuild: false));
            }

            _steps.Add(AttachStep(parent.Name, index, node));
            parentIndexOf[node.Oid] = (index, oid);
        }
    }

    private bool Matches(ExistingIndex index) => index.Unique == _shape.Unique && index.Tail == _shape.Tail;

    private DdlStep OnlyStep(PartitionNode node, string quotedName)
        => new(
            $"Create the index {quotedName} on {node.QualifiedName} alone (ON ONLY: INVALID until every partition's index is attached)",
            new[] { _shape.CreateSql("ONLY " + node.QualifiedName, quotedName, false) },
            LockLevel.Share,
            node.QualifiedName,
            "ON ONLY builds nothing (a partitioned table has no rows of its own): SHARE on the partitioned table alone, not its partitions, for a catalog change of milliseconds")
        {
            LocksTargetOnly = true,
        };

    private DdlStep ConcurrentStep(PartitionNode node, string name, bool rebuild)
        => ConcurrentLeafStep(_context, node, name, _shape.CreateSql(node.QualifiedName, Ident.Quote(name), true), rebuild, "the index");

    /// <summary>
    /// A leaf partition's index <paramref name="name"/> built by <paramref name="createConcurrently"/>
    /// (a CREATE INDEX CONCURRENTLY): SHARE UPDATE EXCLUSIVE on that partition only. An INVALID
    /// leftover of a killed build under the name is dropped first (<paramref name="rebuild"/>), and
    /// a build that fails is dropped again, so a failure leaves no INVALID index behind.
    /// <paramref name="what"/> names the index in the title ("the unique index");
    /// <paramref name="purpose"/> is appended to the reason.
    /// </summary>
    public static DdlStep ConcurrentLeafStep(PlanningContext context, PartitionNode leaf, string name, string createConcurrently, bool rebuild, string what, string? purpose = null)
    {
        var index = Ident.Qualify(leaf.Schema, name);
        var drop = $"DROP INDEX CONCURRENTLY IF EXISTS {index}";
        return new DdlStep(
            rebuild ? $"Build the INVALID index {index} of partition {leaf.QualifiedName} again, concurrently" : $"Build {what} {Ident.Quote(name)} of partition {leaf.QualifiedName} concurrently",
            rebuild ? new[] { drop, createConcurrently } : new[] { createConcurrently },
            LockLevel.ShareUpdateExclusive,
            leaf.QualifiedName,
            "CONCURRENTLY builds the partition's index while the application keeps reading and writing it (SHARE UPDATE EXCLUSIVE on this partition only)" + (purpose is null ? "" : "; " + purpose))
        {
            Transactional = false,
            CleanupOnFailure = new[] { drop },
            LockTimeout = context.ConcurrentLockTimeout,
        };
    }

    private static DdlStep AttachStep(string parentIndex, string childIndex, PartitionNode node)
        => new(
            $"Attach {childIndex} of {node.QualifiedName} to {parentIndex}",
            new[] { $"ALTER INDEX {parentIndex} ATTACH PARTITION {childIndex}" },
            LockLevel.AccessExclusive,
            // A leaf is locked first (see the reason); a sub-partitioned level is not: LOCK TABLE on
            // it would lock its whole subtree, and no query opens a partitioned index.
            node.IsPartitioned ? childIndex : node.QualifiedName,
            node.IsPartitioned
                ? "a catalog change of milliseconds: ACCESS EXCLUSIVE on the sub-partitioned level's index only (which no query opens), SHARE UPDATE EXCLUSIVE on the parent index"
                : "a catalog change of milliseconds on this partition only: the ATTACH takes ACCESS EXCLUSIVE on the partition's index (and SHARE UPDATE EXCLUSIVE on the parent index), which stops every query on the partition (each opens the partition's indexes) as ACCESS EXCLUSIVE on the partition does; so that lock is taken first, its wait bounded by lock_timeout and the hold measured from its grant (an index cannot be locked ahead). The last attach marks the parent index valid");

    private Task<string> ChooseNameAsync(PartitionNode node, CancellationToken ct)
        => ChoosePartitionIndexNameAsync(_context, node, _shape.NameSuffix, _chosenNames, ct);

    /// <summary>
    /// The name a plain CREATE INDEX (or ADD UNIQUE / PRIMARY KEY) on the parent would give this
    /// partition's index: partition_suffix (suffix "a_b_idx", "a_key", "pkey"), numbered when taken
    /// by anything in the schema or by a name already chosen in this plan (<paramref name="chosen"/>, which it joins).
    /// </summary>
    public static async Task<string> ChoosePartitionIndexNameAsync(PlanningContext context, PartitionNode node, string suffix, ISet<string> chosen, CancellationToken ct)
    {
        for (var n = 0; ; n++)
        {
            var name = Ident.Derive(node.Name + "_", suffix + (n == 0 ? "" : n.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            if (chosen.Contains(Ident.Qualify(node.Schema, name)) || await context.Catalog.DescribeNameUseAsync(node.Schema, name, ct).ConfigureAwait(false) is not null)
            {
                continue;
            }

            chosen.Add(Ident.Qualify(node.Schema, name));
            return name;
        }
    }

    private static async Task<IReadOnlyList<ExistingIndex>> ReadIndexesAsync(NpgsqlConnection connection, uint[] tables, CancellationToken ct)
    {
        const string sql = """
            SELECT i.indexrelid, i.indrelid, n.nspname, c.relname, i.indisvalid, i.indisunique, pg_get_indexdef(i.indexrelid),
                   inh.inhparent, EXISTS (SELECT FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_inherits inh ON inh.inhrelid = i.indexrelid
            WHERE i.indrelid = ANY($1)
            ORDER BY n.nspname, c.relname
            """;
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = tables, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Oid });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<ExistingIndex>();
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            list.Add(new ExistingIndex(
                reader.GetFieldValue<uint>(0),
                reader.GetFieldValue<uint>(1),
                reader.GetString(2),
                reader.GetString(3),
                reader.GetBoolean(4),
                reader.GetBoolean(5),
                PartitionedIndexShape.TailOf(reader.GetString(6)),
                reader.IsDBNull(7) ? null : reader.GetFieldValue<uint>(7),
                reader.GetBoolean(8)));
        }

        return list;
    }
}
