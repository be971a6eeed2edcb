using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations.ColumnCopy;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Rename a column by copy (expand/contract), so old and new application versions run side by side.
/// Composed of the column-copy mechanism (Operations/ColumnCopy): expand adds the new column (same
/// type, collation, comment, statistics target, storage, compression, options, grants; nullable),
/// installs the sync trigger (identity conversion) and rebuilds what depends on the old column
/// (<see cref="DependentObjectCopier"/>). Backfill and parity use the trigger's own definition of
/// "in sync". Contract (after parity): build what had to wait, validate, NOT NULL through a
/// validated CHECK, then in one short transaction drop the trigger, hand over default, sequences,
/// replica identity and CLUSTER mark, drop the old column and give the copies their final names.
/// Undo: drop everything built; the table is as before. The phases are <see cref="ColumnCopyOperation"/>'s;
/// this file supplies the new column (same type, the new name), the identity conversion and what it refuses.
/// </summary>
internal sealed class ColumnRename : ColumnCopyOperation
{
    public const string KindName = "RenameColumn";

    private readonly Spec _spec;

    public ColumnRename(Spec spec)
    {
        _spec = spec;
    }

    /// <summary>What the ledger stores about a column rename.</summary>
    internal sealed record Spec(string Schema, string Table, string Column, string NewName) : ColumnCopySpec
    {
        /// <summary>Where the default lives while both columns exist (see <see cref="SyncDefaults"/>).</summary>
        public SyncDefaults Defaults { get; init; }
    }

    public override string? RequestIdentity => MigrationLedger.ToJson(new { _spec.Schema, _spec.Table, _spec.Column, _spec.NewName });

    public override string Kind => KindName;

    /// <summary>Warnings the expand's plan carries for the caller to show (writes the copy cannot follow exactly).</summary>
    public IReadOnlyList<string> Warnings { get; private set; } = Array.Empty<string>();

    protected override ColumnCopyFacts Facts
        => ColumnCopyFacts.Of(_spec, _spec.Schema, _spec.Table, _spec.Column, _spec.NewName, _spec.NewName, _spec.Defaults, ColumnConversion.Identity, newNameInObjectNames: true);

    protected override string Noun => "rename";

    protected override string ContractSummary => $"Complete the rename of {TableName}.{Old} to {New}: drop the old column (clients must use {New} from now on)";

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        var table = await TableResolver.RequireFreeTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: true, ct).ConfigureAwait(false);
        var column = RequireColumns(table);

        await RefuseWhatCannotBeCarriedAsync(context, table, column, ct).ConfigureAwait(false);

        var oldDefault = column.Default is null ? null : await context.Catalog.QualifiedDefaultAsync(table.Oid, column.Number, ct).ConfigureAwait(false);
        var statistics = await context.Catalog.ReadStatisticsAsync(table.Oid, ct).ConfigureAwait(false);
        var spec = _spec with
        {
            TableOid = table.Oid,
            ColumnNumber = column.Number,
            OldDefault = oldDefault,
            Defaults = await SyncDefaultsPlanner.ChooseAsync(context, table, column, oldDefault, ct).ConfigureAwait(false),
            OldNotNull = column.NotNull,
            FunctionSchema = context.Ledger.SchemaName,
            FunctionName = SyncTrigger.DeriveFunctionName(table.Oid, _spec.Table, _spec.Column),
            TriggerName = SyncTrigger.DeriveOldNameTrigger(_spec.Column),
            NewNameTriggerName = SyncTrigger.DeriveNewNameTrigger(_spec.Column),
            SyncSearchPath = await FunctionSearchPath.TypeSchemasAsync(context.Connection, table.Oid, new[] { _spec.Column }, ct).ConfigureAwait(false),
            Copies = new DependentObjectCopier(_spec.Schema, _spec.Table, _spec.Column, _spec.NewName, newNameInObjectNames: true).Plan(table, column, statistics),
        };
        var planner = new ColumnRename(spec);
        if (table.Kind == RelationKind.PartitionedTable)
        {
            await planner.Partitioned.RequireCopyableAsync(context, table, column, spec.Copies, "rename", ct).ConfigureAwait(false);
        }

        // After what is wrong with the column itself (the more specific refusal): a partitioned
        // table is backfilled leaf partition by leaf partition, each by its own key.
        await Partitions.PartitionLeaves.RequireWalkableAsync(context, table, "A rename by copy backfills the new column", ct).ConfigureAwait(false);

        await DependentObjectCopier.RequireNamesFreeAsync(context, table, spec.Copies, ct).ConfigureAwait(false);
        await planner.RequireSyncNamesFreeAsync(context, table, ct).ConfigureAwait(false);
        Warnings = planner.SyncWarnings();
        var warning = spec.Defaults == SyncDefaults.OnOldOnly ? $"Warning: {Old} has a volatile default; see the plan's warning about explicit NULLs through {New}" : null;
        return new ExpandDesign(
            table,
            $"Rename column {Ident.Quote(_spec.Column)} of {TableName} to {Ident.Quote(_spec.NewName)} by copy: add the new column, keep both in sync by trigger, rebuild its constraints and indexes without long locks",
            await planner.CopyExpandStepsAsync(context, table, column, $"{column.Type}{(column.Collation is null ? "" : " COLLATE " + column.Collation)}", copyStorage: true, warning, ct).ConfigureAwait(false),
            Column: _spec.Column,
            NewName: _spec.NewName,
            Strategy: "Copy",
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: table.EstimatedRows);
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration) => DescribeCopy();

    private ColumnInfo RequireColumns(TableInfo table)
    {
        Ident.Validate(_spec.Column, "column name");
        Ident.Validate(_spec.NewName, "new column name");
        var column = table.Column(_spec.Column) ?? throw new ZdtException(
            ErrorIds.ColumnNotFound,
            ErrorKind.ObjectNotFound,
            $"Column {Old} does not exist in {table.QualifiedName}.{Suggest(table)} Nothing was changed.")
        { TargetObject = $"{table.QualifiedName}.{Old}" };
        if (_spec.Column == _spec.NewName)
        {
            throw new ZdtException(ErrorIds.SameName, ErrorKind.InvalidArgument, $"The new name is the same as the old one ({Old}); nothing to do.");
        }

        if (table.Column(_spec.NewName) is not null)
        {
            throw new ZdtException(ErrorIds.ColumnExists, ErrorKind.ResourceExists, $"{table.QualifiedName} already has a column {New}. Choose another name; nothing was changed.")
            { TargetObject = $"{table.QualifiedName}.{New}" };
        }

        return column;
    }

    private string Suggest(TableInfo table)
    {
        var similar = table.Columns.Where(c => string.Equals(c.Name, _spec.Column, StringComparison.OrdinalIgnoreCase)).Select(c => Ident.Quote(c.Name)).ToList();
        return similar.Count > 0 ? $" Names are exact (case-sensitive); did you mean {string.Join(" or ", similar)}?" : "";
    }

    /// <summary>Lists, in one error, everything that depends on the column and that a copy cannot carry.</summary>
    private async Task RefuseWhatCannotBeCarriedAsync(PlanningContext context, TableInfo table, ColumnInfo column, CancellationToken ct)
    {
        var problems = new List<string>();
        if (table.PrimaryKey?.Columns.Contains(column.Number) == true)
        {
            problems.Add("it is part of the primary key (a copy cannot swap a primary key without a long lock; use -Strategy View)");
        }

        if (column.IsIdentity)
        {
            problems.Add("it is an identity column (use -Strategy View)");
        }

        if (column.IsGenerated)
        {
            problems.Add("it is a generated column (use -Strategy View)");
        }

        foreach (var constraint in table.Constraints.Where(c => c.Columns.Contains(column.Number) && c.Type is ConstraintType.Exclusion or ConstraintType.Trigger or ConstraintType.Other))
        {
            problems.Add($"constraint {Ident.Quote(constraint.Name)} ({constraint.Type}) cannot be rebuilt without a long lock");
        }

        problems.AddRange(await UncarriedDependentsAsync(context, table, column, _ => false, "views keep the old column; recreate the view on the new name after the rename, or use -Strategy View", ct).ConfigureAwait(false));
        if (problems.Count > 0)
        {
            throw new ZdtException(
                ErrorIds.ColumnCannotBeCopied,
                ErrorKind.InvalidOperation,
                $"Cannot rename {table.QualifiedName}.{Old} by copy: {string.Join("; ", problems)}. Nothing was changed.")
            { TargetObject = $"{table.QualifiedName}.{Old}" };
        }
    }

    /// <summary>Writes whose intent the trigger cannot know without the writer's version (docs/architecture.md, "Sync semantics").</summary>
    private IReadOnlyList<string> SyncWarnings()
        => _spec.Defaults != SyncDefaults.OnOldOnly
            ? Array.Empty<string>()
            : new[]
            {
                $"The default of {TableName}.{Old} ({_spec.OldDefault}) is volatile, so while both names exist only {Old} carries it. Two writes through the new name {New} then differ from a plain RENAME COLUMN: " +
                $"an INSERT that writes NULL to {New} explicitly stores a fresh default instead of NULL{(_spec.OldNotNull ? " (instead of failing on the NOT NULL)" : "")}, and UPDATE ... SET {New} = DEFAULT stores NULL{(_spec.OldNotNull ? " (fails on the NOT NULL)" : "")}. " +
                $"Every other write is kept as written. Only the writer's version could tell these apart: if the new application version relies on them, use -Strategy View, where each version writes the one physical column through its own name.",
            };
}
