using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations.Partitions;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Make an existing column NOT NULL without the ACCESS EXCLUSIVE scan of a plain SET NOT NULL.
/// Planning counts the NULLs first and refuses with the count, so the change never fails half way.
/// Expand: CHECK (col IS NOT NULL) NOT VALID (from here on no new NULL can be written), then
/// VALIDATE it in its own transaction (a scan that lets reads and writes go on). Contract: SET NOT
/// NULL, which PostgreSQL 12+ proves from the validated check without a scan, and drop the check.
/// No backfill. Undo: drop the check. On a partitioned table the check is added and validated
/// partition by partition, then on each partitioned level (<see cref="PartitionedConstraint"/>); SET NOT
/// NULL on the parent then recurses, each partition proven by its own validated check.
/// </summary>
internal sealed class SetColumnNotNull : MigrationOperation
{
    public const string KindName = "SetColumnNotNull";

    private readonly Spec _spec;

    public SetColumnNotNull(Spec spec)
    {
        _spec = spec;
    }

    public sealed record Spec(string Schema, string Table, string Column)
    {
        public uint TableOid { get; init; }
    }

    public override string? RequestIdentity => MigrationLedger.ToJson(new { _spec.Schema, _spec.Table, _spec.Column });

    public override string Kind => KindName;

    public override MigrationPhase ContractFrom => MigrationPhase.Expanded;

    private string TableName => Ident.Qualify(_spec.Schema, _spec.Table);

    private string ColumnName => Ident.Quote(_spec.Column);

    private string CheckName => NotNullSteps.CheckName(_spec.Column);

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        Ident.Validate(_spec.Column, "column name");
        var table = await TableResolver.RequireFreeTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: true, ct).ConfigureAwait(false);
        var column = table.Column(_spec.Column)
            ?? throw new ZdtException(ErrorIds.ColumnNotFound, ErrorKind.ObjectNotFound, $"{table.QualifiedName} has no column {ColumnName}. Names are exact (case-sensitive). Nothing was changed.")
            { TargetObject = _spec.Column };
        if (column.NotNull)
        {
            throw new ZdtException(ErrorIds.AlreadyNotNull, ErrorKind.InvalidOperation, $"{ColumnName} of {table.QualifiedName} is already NOT NULL; nothing to do.")
            { TargetObject = _spec.Column };
        }

        var nulls = await NotNullSteps.CountNullsAsync(context, table, column, ct).ConfigureAwait(false);
        if (nulls > 0)
        {
            throw NotNullSteps.NullsPresent(table, column, nulls, "Fill them first (e.g. UPDATE in batches, or Add-Column's backfill for a new column).");
        }

        var steps = await AddAndValidateAsync(context, table, column, ct).ConfigureAwait(false);
        var spec = _spec with { TableOid = table.Oid };
        return new ExpandDesign(
            table,
            $"Make {ColumnName} of {table.QualifiedName} NOT NULL: add and validate CHECK ({ColumnName} IS NOT NULL) now, SET NOT NULL at contract{NotNullSteps.KeptCheckNote(context.ServerVersion)}",
            steps,
            Column: _spec.Column,
            NewName: null,
            Strategy: "ValidatedCheck",
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: null);
    }

    public override async Task<PhaseDesign> PlanContractAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var (table, column) = await RequireColumnAsync(context, migration, ct).ConfigureAwait(false);
        var steps = new List<DdlStep>();
        if (!column.NotNull)
        {
            // Normally already done by the expand; planned again in case the check was dropped since.
            steps.AddRange(await AddAndValidateAsync(context, table, column, ct).ConfigureAwait(false));
        }

        if (NotNullSteps.SetNotNullAndDropCheck(table, column, CheckName, context.ServerVersion) is { } last)
        {
            steps.Add(last);
        }

        return new PhaseDesign(table.QualifiedName, $"Set {ColumnName} of {table.QualifiedName} NOT NULL using the validated check{NotNullSteps.KeptCheckNote(context.ServerVersion)}", steps);
    }

    public override async Task<PhaseDesign> PlanUndoAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var (table, column) = await RequireColumnAsync(context, migration, ct).ConfigureAwait(false);
        if (table.Kind == RelationKind.PartitionedTable)
        {
            var partitioned = await NotNullSteps.ReadPartitionedCheckAsync(context, table, _spec.Column, CheckName, ct).ConfigureAwait(false);
            return new PhaseDesign(table.QualifiedName, $"Undo making {ColumnName} of {table.QualifiedName} and its partitions NOT NULL: NULLs are allowed again", partitioned.Drop());
        }

        var check = NotNullSteps.FindCheck(table, column, CheckName);
        var steps = check is null
            ? Array.Empty<DdlStep>()
            : new[]
            {
                new DdlStep(
                    $"Drop the check {Ident.Quote(CheckName)}",
                    new[] { $"ALTER TABLE {table.QualifiedName} DROP CONSTRAINT {Ident.Quote(CheckName)}" },
                    LockLevel.AccessExclusive,
                    table.QualifiedName,
                    "a catalog change held for milliseconds"),
            };
        return new PhaseDesign(table.QualifiedName, $"Undo making {ColumnName} of {table.QualifiedName} NOT NULL: NULLs are allowed again", steps);
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration) => new Dictionary<string, string>
    {
        ["Table"] = TableName,
        ["Column"] = ColumnName,
        ["Check"] = Ident.Quote(CheckName),
    };

    private Task<IReadOnlyList<DdlStep>> AddAndValidateAsync(PlanningContext context, TableInfo table, ColumnInfo column, CancellationToken ct)
        => NotNullSteps.AddAndValidateAsync(context, table, column, CheckName, ct);

    private async Task<(TableInfo Table, ColumnInfo Column)> RequireColumnAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(_spec.TableOid, ct).ConfigureAwait(false)
            ?? throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, $"The table of migration {migration.Id} ({TableName}) no longer exists.");
        var column = table.Column(_spec.Column)
            ?? throw new ZdtException(ErrorIds.ColumnGone, ErrorKind.ObjectNotFound, $"The column {ColumnName} of migration {migration.Id} no longer exists in {table.QualifiedName}. Nothing was changed.");
        return (table, column);
    }
}
