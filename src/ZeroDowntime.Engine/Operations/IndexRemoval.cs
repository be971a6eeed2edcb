using Npgsql;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations.Partitions;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Drop an index with DROP INDEX CONCURRENTLY, which waits for the queries using it instead of
/// taking ACCESS EXCLUSIVE on the table (what a plain DROP INDEX does, stalling every query behind
/// it). Refuses an index that backs a constraint or the replica identity, where dropping it would
/// change more than performance. The index's definition is kept in the ledger, to re-create it.
/// One shot: recorded as completed, not undoable (New-Index builds it again).
/// </summary>
internal sealed class IndexRemoval : OneShotOperation
{
    public const string KindName = "DropIndex";

    private readonly Spec _spec;

    public IndexRemoval(Spec spec)
    {
        _spec = spec;
    }

    /// <summary>What the ledger stores; Definition is the index's CREATE INDEX statement at the time it was dropped.</summary>
    public sealed record Spec(string Schema, string Name)
    {
        public string? Table { get; init; }

        public string? Definition { get; init; }
    }

    private sealed record IndexFacts(uint TableOid, char Kind, string? Constraint, bool ReplicaIdentity, string Definition, string? PartitionOf);

    public override string Kind => KindName;

    private string QualifiedIndex => Ident.Qualify(_spec.Schema, _spec.Name);

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        Ident.Validate(_spec.Schema, "schema name");
        Ident.Validate(_spec.Name, "index name");
        var facts = await ReadIndexAsync(context, ct).ConfigureAwait(false)
            ?? throw new ZdtException(ErrorIds.IndexNotFound, ErrorKind.ObjectNotFound, $"There is no index {QualifiedIndex}. Names are exact (case-sensitive). Nothing was changed.")
            { TargetObject = QualifiedIndex };
        var refusal = facts switch
        {
            { PartitionOf: { } parent } => $"{QualifiedIndex} is a partition of the index {parent}, which needs it; remove {parent} instead (that drops the index of every partition)",
            { Constraint: { } c } => $"{QualifiedIndex} enforces the constraint {Ident.Quote(c)}; drop the constraint instead (that drops the index too)",
            { ReplicaIdentity: true } => $"{QualifiedIndex} is the replica identity of its table; logical replication of UPDATE and DELETE would stop. Change the replica identity first",
            _ => null,
        };
        if (refusal is not null)
        {
            throw new ZdtException(ErrorIds.IndexInUse, ErrorKind.InvalidOperation, refusal + ". Nothing was changed.") { TargetObject = QualifiedIndex };
        }

        var table = await context.Catalog.ReadTableAsync(facts.TableOid, ct).ConfigureAwait(false)
            ?? throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, $"The table of index {QualifiedIndex} is gone. Nothing was changed.");
        var partitioned = facts.Kind == 'I';
        var step = partitioned ? PartitionedIndexBuild.DropStep(QualifiedIndex, table.QualifiedName, $"Drop the partitioned index {QualifiedIndex} with the index of every partition") : new DdlStep(
            $"Drop the index {QualifiedIndex} concurrently",
            new[] { $"DROP INDEX CONCURRENTLY {QualifiedIndex}" },
            LockLevel.ShareUpdateExclusive,
            table.QualifiedName,
            "CONCURRENTLY waits for the queries using the index instead of taking ACCESS EXCLUSIVE on the table, and cannot run inside a transaction block")
        {
            Transactional = false,
            LockTimeout = context.ConcurrentLockTimeout,
        };
        var spec = _spec with { Table = table.Name, Definition = facts.Definition };
        return new ExpandDesign(
            table,
            $"Drop the index {QualifiedIndex} of {table.QualifiedName} {(partitioned ? "and of each of its partitions (ACCESS EXCLUSIVE for milliseconds: PostgreSQL cannot drop a partitioned index concurrently)" : "concurrently")} (its definition stays in the ledger: {facts.Definition})",
            new[] { step },
            Column: null,
            NewName: null,
            Strategy: partitioned ? "PartitionedDrop" : "Concurrent",
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: null);
    }

    public override Task<IReadOnlyList<DdlStep>> PlanRollbackAsync(PlanningContext context, CancellationToken ct)
        => Task.FromResult<IReadOnlyList<DdlStep>>(Array.Empty<DdlStep>());

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration)
    {
        var details = new Dictionary<string, string> { ["Index"] = QualifiedIndex };
        if (_spec.Definition is { } definition)
        {
            details["Definition"] = definition;
        }

        return details;
    }

    private async Task<IndexFacts?> ReadIndexAsync(PlanningContext context, CancellationToken ct)
    {
        const string sql = """
            SELECT i.indrelid, c.relkind::text, con.conname, i.indisreplident, pg_get_indexdef(c.oid),
                   (SELECT inh.inhparent::regclass::text FROM pg_inherits inh WHERE inh.inhrelid = c.oid)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_index i ON i.indexrelid = c.oid
            LEFT JOIN pg_constraint con ON con.conindid = c.oid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
            WHERE n.nspname = $1 AND c.relname = $2
            """;
        await using var cmd = new NpgsqlCommand(sql, context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = _spec.Schema });
        cmd.Parameters.Add(new NpgsqlParameter { Value = _spec.Name });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            return null;
        }

        return new IndexFacts(
            reader.GetFieldValue<uint>(0),
            reader.GetString(1)[0],
            reader.IsDBNull(2) ? null : reader.GetString(2),
            reader.GetBoolean(3),
            reader.GetString(4),
            reader.IsDBNull(5) ? null : reader.GetString(5));
    }
}
