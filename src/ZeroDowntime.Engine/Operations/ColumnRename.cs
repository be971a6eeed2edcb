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
/// Undo: drop everything built; the table is as before.
/// </summary>
internal sealed class ColumnRename : MigrationOperation, IColumnCopy
{
    public const string KindName = "RenameColumn";

    private readonly Spec _spec;

    public ColumnRename(Spec spec)
    {
        _spec = spec;
    }

    /// <summary>What the ledger stores about a column rename.</summary>
    internal sealed record Spec(string Schema, string Table, string Column, string NewName)
    {
        public uint TableOid { get; init; }

        public short ColumnNumber { get; init; }

        /// <summary>The old column's default, schema-qualified (so it means the same inside the trigger whatever the search_path).</summary>
        public string? OldDefault { get; init; }

        /// <summary>Where the default lives while both columns exist (see <see cref="SyncDefaults"/>).</summary>
        public SyncDefaults Defaults { get; init; }

        public bool OldNotNull { get; init; }

        public string FunctionSchema { get; init; } = "";

        public string FunctionName { get; init; } = "";

        /// <summary>The trigger of INSERT and UPDATE OF the old column.</summary>
        public string TriggerName { get; init; } = "";

        /// <summary>The trigger of UPDATE OF the new column.</summary>
        public string NewNameTriggerName { get; init; } = "";

        public IReadOnlyList<CopiedObject> Copies { get; init; } = Array.Empty<CopiedObject>();
    }

    public override string Kind => KindName;

    public override MigrationPhase ContractFrom => MigrationPhase.Verified;

    /// <summary>Warnings the expand's plan carries for the caller to show (writes the copy cannot follow exactly).</summary>
    public IReadOnlyList<string> Warnings { get; private set; } = Array.Empty<string>();

    /// <summary>The old and new column, for the parity check's report.</summary>
    public (string Old, string New) ParityColumns => (_spec.Column, _spec.NewName);

    /// <summary>The parity check's predicate of a row out of sync: the trigger's, the backfill's.</summary>
    public string ParityMismatch => Sync.OutOfSync(TableName);

    private string TableName => Ident.Qualify(_spec.Schema, _spec.Table);

    private string Old => Ident.Quote(_spec.Column);

    private string New => Ident.Quote(_spec.NewName);

    private SyncTrigger Sync => new(
        _spec.Schema,
        _spec.Table,
        _spec.Column,
        _spec.NewName,
        ColumnConversion.Identity,
        _spec.Defaults,
        _spec.OldDefault,
        _spec.Defaults == SyncDefaults.OnBoth ? _spec.OldDefault : null,
        _spec.FunctionSchema,
        _spec.FunctionName,
        _spec.TriggerName,
        _spec.NewNameTriggerName);

    private DependentObjectCopier Copier => new(_spec.Schema, _spec.Table, _spec.Column, _spec.NewName, newNameInObjectNames: true);

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        var table = await TableResolver.RequireFreeTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: false, ct).ConfigureAwait(false);
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
            Copies = Copier.Plan(table, column, statistics),
        };
        var planner = new ColumnRename(spec);
        await DependentObjectCopier.RequireNamesFreeAsync(context, table, spec.Copies, ct).ConfigureAwait(false);
        await planner.RequireSyncNamesFreeAsync(context, table, ct).ConfigureAwait(false);
        Warnings = planner.SyncWarnings();
        return new ExpandDesign(
            table,
            $"Rename column {Ident.Quote(_spec.Column)} of {TableName} to {Ident.Quote(_spec.NewName)} by copy: add the new column, keep both in sync by trigger, rebuild its constraints and indexes without long locks",
            planner.ExpandSteps(context, table, column),
            Column: _spec.Column,
            NewName: _spec.NewName,
            Strategy: "Copy",
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: table.EstimatedRows);
    }

    public override BackfillDesign PlanBackfill(TableInfo table, LedgerRow migration)
        => new(Sync.BringInSync, Sync.OutOfSync, $"{New} = {Old}");

    public override async Task BeforeContractAsync(PlanningContext context, LedgerRow migration, MigrationEngine engine, CancellationToken ct)
    {
        // Parity is checked again right before the old column goes: the trigger should have kept
        // it, but a disabled trigger or a session_replication_role=replica writer would not.
        var parity = await engine.CheckParityAsync(migration.Id, ct).ConfigureAwait(false);
        if (!parity.InParity)
        {
            throw new ZdtException(
                "ParityFailed",
                ErrorKind.InvalidData,
                $"Refusing to drop {Old}: {parity.Mismatches:N0} row(s) of {TableName} have {Old} IS DISTINCT FROM {New} (for example keys {string.Join(", ", parity.SampleKeys)}). Run Invoke-Backfill again, then Test-ColumnParity. Nothing was changed.")
            { TargetObject = migration.Id };
        }
    }

    public override async Task<PhaseDesign> PlanContractAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await RequireTableAsync(context, migration, ct).ConfigureAwait(false);
        var copier = Copier;
        var steps = new List<DdlStep>(copier.ContractPreparationSteps(context, table, _spec.Copies));

        var notNullCheck = NotNullSteps.CheckName(_spec.NewName);
        var newColumn = table.Column(_spec.NewName);
        var needsNotNull = _spec.OldNotNull && newColumn is { NotNull: false };
        if (needsNotNull)
        {
            steps.AddRange(NotNullSteps.AddAndValidate(table, newColumn!, notNullCheck));
        }

        // Before PostgreSQL 12 SET NOT NULL would scan the table under ACCESS EXCLUSIVE: the validated check stays instead.
        var setNotNull = needsNotNull && context.ServerVersion >= NotNullSteps.SetNotNullSkipsScanFrom;
        steps.AddRange(copier.EarlyDropSteps(context, table, _spec.ColumnNumber, _spec.Copies));
        steps.Add(new DdlStep(
            $"Refresh the planner statistics of {New}",
            new[] { $"ANALYZE {TableName} ({New})" },
            LockLevel.ShareUpdateExclusive,
            TableName,
            "samples the table; does not block reads or writes"));

        var swap = new List<string>(Sync.DropStatements());
        if (_spec.OldDefault is not null && newColumn?.Default is null)
        {
            swap.Add($"ALTER TABLE {TableName} ALTER COLUMN {New} SET DEFAULT {_spec.OldDefault}");
        }

        foreach (var sequence in await OwnedSequencesAsync(context, ct).ConfigureAwait(false))
        {
            // A sequence OWNED BY the old column would be dropped with it.
            swap.Add($"ALTER SEQUENCE {sequence} OWNED BY {TableName}.{New}");
        }

        if (setNotNull)
        {
            swap.Add($"ALTER TABLE {TableName} ALTER COLUMN {New} SET NOT NULL");
            swap.Add($"ALTER TABLE {TableName} DROP CONSTRAINT {Ident.Quote(notNullCheck)}");
        }

        swap.AddRange(copier.SwapBeforeDrop(_spec.Copies));
        swap.Add($"ALTER TABLE {TableName} DROP COLUMN {Old}");
        swap.AddRange(copier.SwapAfterDrop(_spec.Copies));
        steps.Add(new DdlStep(
            $"Drop the sync trigger and the old column {Old}; give the new objects their final names",
            swap,
            LockLevel.AccessExclusive,
            TableName,
            "catalog-only changes (SET NOT NULL uses the validated CHECK instead of scanning; DROP COLUMN does not rewrite)"));
        return new PhaseDesign(TableName, $"Complete the rename of {TableName}.{Old} to {New}: drop the old column (clients must use {New} from now on)", steps);
    }

    public override bool CanUndoFrom(MigrationPhase phase) => base.CanUndoFrom(phase) || phase == MigrationPhase.Contracting;

    public override async Task<PhaseDesign> PlanUndoAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await RequireTableAsync(context, migration, ct).ConfigureAwait(false);
        var statements = new List<string>(Sync.DropStatements());

        // Migrations expanded by earlier versions moved the old default into the trigger.
        if (_spec.OldDefault is not null && table.Column(_spec.Column)?.Default is null)
        {
            statements.Add($"ALTER TABLE {TableName} ALTER COLUMN {Old} SET DEFAULT {_spec.OldDefault}");
        }

        if (table.Column(_spec.NewName) is not null)
        {
            // Its indexes, constraints (NOT VALID or not), statistics and an INVALID index left by a failed build go with it.
            statements.Add($"ALTER TABLE {TableName} DROP COLUMN {New}");
        }

        var steps = new List<DdlStep>
        {
            new($"Drop the sync trigger and the new column {New}", statements, LockLevel.AccessExclusive, TableName, "catalog-only changes; DROP COLUMN does not rewrite the table"),
        };

        // A contract that stopped half-way may have dropped (or left INVALID) the old column's plain indexes.
        steps.AddRange(Copier.UndoSteps(context, table, _spec.Copies));
        return new PhaseDesign(TableName, $"Undo the rename of {TableName}.{Old} to {New}", steps);
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration) => new Dictionary<string, string>
    {
        ["OldColumn"] = Old,
        ["NewColumn"] = New,
        ["SyncTrigger"] = Ident.Quote(_spec.TriggerName),
        ["SyncTriggerOfNewName"] = _spec.NewNameTriggerName.Length > 0 ? Ident.Quote(_spec.NewNameTriggerName) : "",
        ["SyncFunction"] = Sync.QualifiedFunction,
        ["SyncDefaults"] = _spec.Defaults.ToString(),
        ["RebuiltOnNewColumn"] = string.Join(", ", _spec.Copies.Select(c => $"{c.Kind} {Ident.Quote(c.Final)}")),
    };

    private ColumnInfo RequireColumns(TableInfo table)
    {
        Ident.Validate(_spec.Column, "column name");
        Ident.Validate(_spec.NewName, "new column name");
        var column = table.Column(_spec.Column) ?? throw new ZdtException(
            "ColumnNotFound",
            ErrorKind.ObjectNotFound,
            $"Column {Old} does not exist in {table.QualifiedName}.{Suggest(table)} Nothing was changed.")
        { TargetObject = $"{table.QualifiedName}.{Old}" };
        if (_spec.Column == _spec.NewName)
        {
            throw new ZdtException("SameName", ErrorKind.InvalidArgument, $"The new name is the same as the old one ({Old}); nothing to do.");
        }

        if (table.Column(_spec.NewName) is not null)
        {
            throw new ZdtException("ColumnExists", ErrorKind.ResourceExists, $"{table.QualifiedName} already has a column {New}. Choose another name; nothing was changed.")
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

        foreach (var dependent in await context.Catalog.ColumnDependentsAsync(table.Oid, column.Number, ct).ConfigureAwait(false))
        {
            var carried = dependent.Catalog switch
            {
                "pg_class" => dependent.Detail is "i" or "S",
                "pg_constraint" => dependent.Detail == "own",
                "pg_attrdef" => dependent.Detail == "own",
                "pg_statistic_ext" => true,
                _ => false,
            };
            if (!carried)
            {
                problems.Add(dependent.Catalog switch
                {
                    "pg_rewrite" => $"{dependent.Description} uses it (views keep the old column; recreate the view on the new name after the rename, or use -Strategy View)",
                    "pg_constraint" => $"{dependent.Description} in another table references it",
                    "pg_attrdef" => $"{dependent.Description} (a generated column) is computed from it",
                    _ => $"{dependent.Description} depends on it",
                });
            }
        }

        if (problems.Count > 0)
        {
            throw new ZdtException(
                "ColumnCannotBeCopied",
                ErrorKind.InvalidOperation,
                $"Cannot rename {table.QualifiedName}.{Old} by copy: {string.Join("; ", problems)}. Nothing was changed.")
            { TargetObject = $"{table.QualifiedName}.{Old}" };
        }
    }

    /// <summary>The sync function and triggers must not take a name already used (a raw 42723/42710 otherwise).</summary>
    private async Task RequireSyncNamesFreeAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        if (await context.Catalog.DescribeFunctionAsync(_spec.FunctionSchema, _spec.FunctionName, ct).ConfigureAwait(false) is { } function)
        {
            throw new ZdtException(
                "NameTaken",
                ErrorKind.ResourceExists,
                $"The sync function of this rename would be {Sync.QualifiedFunction}, but function {function} already exists (left by an earlier migration of this table, or created by someone else). Drop it if it is not in use; nothing was changed.")
            { TargetObject = Sync.QualifiedFunction };
        }

        foreach (var trigger in new[] { _spec.TriggerName, _spec.NewNameTriggerName }.Where(t => table.Triggers.Any(x => x.Name == t)))
        {
            throw new ZdtException(
                "NameTaken",
                ErrorKind.ResourceExists,
                $"{TableName} already has a trigger named {Ident.Quote(trigger)}, the name of this rename's sync trigger. Rename or drop it first; nothing was changed.")
            { TargetObject = trigger };
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

    private IReadOnlyList<DdlStep> ExpandSteps(PlanningContext context, TableInfo table, ColumnInfo column)
    {
        var first = new List<string>
        {
            $"ALTER TABLE {TableName} ADD COLUMN {New} {column.Type}{(column.Collation is null ? "" : " COLLATE " + column.Collation)}",
        };
        first.AddRange(ColumnAttributes.CopyStatements(TableName, column, New));
        if (_spec.Defaults == SyncDefaults.OnBoth)
        {
            // Set after ADD COLUMN, so existing rows stay NULL (not yet copied) rather than taking the default.
            first.Add($"ALTER TABLE {TableName} ALTER COLUMN {New} SET DEFAULT {_spec.OldDefault}");
        }

        first.AddRange(Sync.CreateStatements());
        first.AddRange(table.Grants.Where(g => g.Column == _spec.Column).Select(g => CompatibilityView.GrantSql(g with { Column = _spec.NewName }, TableName)));
        first.AddRange(Copier.ExpandCatalogStatements(_spec.Copies));

        var steps = new List<DdlStep>
        {
            new(
                $"Add {New}, the sync trigger{(_spec.Copies.Any(c => c.Kind.IsNotValidConstraint()) ? " and NOT VALID constraints" : "")}",
                first,
                LockLevel.AccessExclusive,
                TableName,
                "adding a nullable column (a default is set only afterwards, so no existing row is written), triggers, statistics objects and NOT VALID constraints are catalog changes: no scan, no rewrite"
                + (_spec.Defaults == SyncDefaults.OnOldOnly ? $". Warning: {Old} has a volatile default; see the plan's warning about explicit NULLs through {New}" : "")),
        };
        steps.AddRange(Copier.ExpandIndexSteps(context, _spec.Copies));
        return steps;
    }

    private async Task<TableInfo> RequireTableAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(_spec.TableOid, ct).ConfigureAwait(false);
        if (table is null || table.Name != _spec.Table || table.Schema != _spec.Schema || table.Column(_spec.Column) is null)
        {
            throw new ZdtException(
                "TableChangedElsewhere",
                ErrorKind.InvalidOperation,
                $"Migration {migration.Id} expected {TableName} with column {Old}, but {(table is null ? "the table is gone" : $"it is now {table.QualifiedName}{(table.Column(_spec.Column) is null ? $" without {Old}" : "")}")}. Nothing was changed.");
        }

        return table;
    }

    private async Task<IReadOnlyList<string>> OwnedSequencesAsync(PlanningContext context, CancellationToken ct)
    {
        var dependents = await context.Catalog.ColumnDependentsAsync(_spec.TableOid, _spec.ColumnNumber, ct).ConfigureAwait(false);
        return dependents.Where(d => d.Catalog == "pg_class" && d.Detail == "S").Select(d => Ident.Qualify(d.RelationSchema!, d.RelationName!)).ToList();
    }
}
