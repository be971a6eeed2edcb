using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations.Partitions;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// What a column copy operation (rename by copy, type change) has decided at expand, in the terms
/// the shared phases need. Each operation builds it from its own ledger spec.
/// </summary>
/// The new column (NewColumn) is a rename's new name or a type change's shadow column;
/// FinalName is the name it has after contract (the new name, or the old one for a type change).
internal sealed record ColumnCopyFacts(
    string Schema,
    string Table,
    string OldColumn,
    string NewColumn,
    string FinalName,
    uint TableOid,
    short ColumnNumber,
    string? OldDefault,
    SyncDefaults Defaults,
    bool OldNotNull,
    string FunctionSchema,
    string FunctionName,
    string OldNameTrigger,
    string NewNameTrigger,
    IReadOnlyList<CopiedObject> Copies,
    ColumnConversion Conversion,
    bool NewNameInObjectNames,
    IReadOnlyList<string>? SyncSearchPath = null)
{
    /// <summary>The facts of a copy from what its ledger spec shares with every copy and what is its own.</summary>
    public static ColumnCopyFacts Of(ColumnCopySpec spec, string schema, string table, string oldColumn, string newColumn, string finalName, SyncDefaults defaults, ColumnConversion conversion, bool newNameInObjectNames)
        => new(schema, table, oldColumn, newColumn, finalName, spec.TableOid, spec.ColumnNumber, spec.OldDefault, defaults, spec.OldNotNull, spec.FunctionSchema, spec.FunctionName, spec.TriggerName, spec.NewNameTriggerName, spec.Copies, conversion, newNameInObjectNames, spec.SyncSearchPath);
}

/// <summary>
/// The phases every column copy shares, so an operation supplies only its specifics (the new
/// column's definition, the conversion, what it refuses, its parity predicate): expand adds the new
/// column with the old one's attributes and grants, the sync trigger and the copies of dependent
/// objects (<see cref="DependentObjectCopier"/>); the backfill and the parity check render the
/// trigger's own definition of "in sync"; the contract validates, makes the new column NOT NULL
/// through a validated CHECK and swaps in one short ACCESS EXCLUSIVE transaction (drop the trigger,
/// move the default and owned sequences, drop the old column, final names); undo drops everything
/// built.
/// </summary>
internal abstract class ColumnCopyOperation : MigrationOperation, IColumnCopy
{
    public override MigrationPhase ContractFrom => MigrationPhase.Verified;

    /// <summary>The old and new column, for the parity check's report.</summary>
    public (string Old, string New) ParityColumns => (Facts.OldColumn, Facts.NewColumn);

    /// <summary>The parity check's predicate (over the relation's name or alias) of a row that is not ready for the contract.</summary>
    public virtual string ParityMismatch(string relation) => Sync.OutOfSync(relation);

    /// <inheritdoc/>
    public virtual IReadOnlyList<ParityPart> ParityParts => new[] { OwnParityPart };

    /// <summary>This copy's own table and column pair for the parity check.</summary>
    protected ParityPart OwnParityPart => new(Facts.TableOid, Facts.OldColumn, Facts.NewColumn, ParityMismatch);

    protected abstract ColumnCopyFacts Facts { get; }

    /// <summary>What the operation is called in messages ("rename", "type change").</summary>
    protected abstract string Noun { get; }

    protected string TableName => Ident.Qualify(Facts.Schema, Facts.Table);

    protected string Old => Ident.Quote(Facts.OldColumn);

    protected string New => Ident.Quote(Facts.NewColumn);

    protected SyncTrigger Sync => new(
        Facts.Schema,
        Facts.Table,
        Facts.OldColumn,
        Facts.NewColumn,
        Facts.Conversion,
        Facts.Defaults,
        Facts.OldDefault,
        Facts.Defaults == SyncDefaults.OnBoth ? Facts.OldDefault : null,
        Facts.FunctionSchema,
        Facts.FunctionName,
        Facts.OldNameTrigger,
        Facts.NewNameTrigger,
        Facts.SyncSearchPath);

    protected DependentObjectCopier Copier => new(Facts.Schema, Facts.Table, Facts.OldColumn, Facts.NewColumn, Facts.NewNameInObjectNames);

    /// <summary>What the copy does differently on a partitioned table.</summary>
    protected PartitionedCopy Partitioned => new(Facts.Schema, Facts.Table);

    public override BackfillDesign? PlanBackfill(TableInfo table, LedgerRow migration)
        => new(Sync.BringInSync, Sync.OutOfSync, $"{New} = {Facts.Conversion.ToNew(Old)}");

    public override async Task BeforeContractAsync(PlanningContext context, LedgerRow migration, MigrationEngine engine, CancellationToken ct)
    {
        // Read, not required: what a plain table's contract finds changed is reported as before, by the parity check.
        if (await context.Catalog.ReadTableAsync(Facts.TableOid, ct).ConfigureAwait(false) is { Kind: RelationKind.PartitionedTable } table)
        {
            // Every partition, also one created or attached since the expand, must be synced by the trigger.
            await Partitioned.RequireEveryPartitionReadyAsync(context, table.Oid, Facts.NewColumn, new[] { Facts.OldNameTrigger, Facts.NewNameTrigger }.Where(t => t.Length > 0).ToList(), migration.Id, ct).ConfigureAwait(false);
        }

        // Parity is checked again right before the old column goes: the trigger should have kept
        // it, but a disabled trigger or a session_replication_role=replica writer would not.
        var parity = await engine.CheckParityAsync(migration.Id, ct).ConfigureAwait(false);
        if (!parity.InParity)
        {
            throw new ZdtException(
                ErrorIds.ParityFailed,
                ErrorKind.InvalidData,
                $"Refusing to drop {Old}: {parity.Mismatches:N0} row(s) of {TableName} {MismatchMeaning} (for example keys {string.Join(", ", parity.SampleKeys)}). {MismatchAdvice} Nothing was changed.")
            { TargetObject = migration.Id };
        }
    }

    /// <summary>What a mismatching row is, in the parity error.</summary>
    protected virtual string MismatchMeaning => $"have {Old} IS DISTINCT FROM {New}";

    protected virtual string MismatchAdvice => "Run Invoke-Backfill again, then Test-ColumnParity.";

    public override async Task<PhaseDesign> PlanContractAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var (steps, swap) = await PlanContractPartsAsync(context, migration, ct).ConfigureAwait(false);
        return new PhaseDesign(TableName, ContractSummary, steps.Append(SwapStep(swap, Array.Empty<string>())).ToList());
    }

    /// <summary>The contract's one short ACCESS EXCLUSIVE transaction, on this table and then on <paramref name="alsoLocks"/> in that order.</summary>
    protected DdlStep SwapStep(IReadOnlyList<string> swap, IReadOnlyList<string> alsoLocks)
        => new(
            $"Drop the sync trigger and the old column {Old}; give the new {(Facts.FinalName != Facts.NewColumn ? "column and " : "")}objects their final names{(alsoLocks.Count > 0 ? $"; the same in {string.Join(", ", alsoLocks)}" : "")}",
            swap,
            LockLevel.AccessExclusive,
            TableName,
            "catalog-only changes (SET NOT NULL uses the validated CHECK instead of scanning; DROP COLUMN does not rewrite; a primary key is attached to its already built index)"
                + (alsoLocks.Count > 0 ? $"; the tables are locked up front in this order: {TableName}, {string.Join(", ", alsoLocks)}" : ""))
        {
            AlsoLocks = alsoLocks,
        };

    /// <summary>
    /// The contract of this copy in two parts: the steps before the swap (validations, deferred index
    /// builds, early index drops, ANALYZE), planned from the catalog so a resumed contract does not
    /// repeat what is done, and the swap's statements, for <see cref="SwapStep"/> (with -Cascade, one
    /// swap carries those of several copies).
    /// </summary>
    protected async Task<(List<DdlStep> Steps, List<string> Swap)> PlanContractPartsAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var facts = Facts;
        var table = await RequireTableAsync(context, migration, ct).ConfigureAwait(false);
        var copier = Copier;
        var partitioned = table.Kind == RelationKind.PartitionedTable;

        // The partition tree as it is now (a partition may have been created since the expand), read once for every part of the plan.
        var tree = partitioned ? await PartitionTree.ReadAsync(context.Connection, table.Oid, ct).ConfigureAwait(false) : null;
        var steps = new List<DdlStep>(tree is not null
            ? (await Partitioned.IndexStepsAsync(context, tree, facts.Copies, ct).ConfigureAwait(false))
                .Concat(await Partitioned.PrimaryKeyIndexStepsAsync(context, tree, facts.Copies, ct).ConfigureAwait(false))
                .Concat(await Partitioned.CheckStepsAsync(context, tree, facts.Copies, ct).ConfigureAwait(false))
                .Concat(await Partitioned.ForeignKeyStepsAsync(context, tree, table, facts.Copies, ct).ConfigureAwait(false))
            : copier.ContractPreparationSteps(context, table, facts.Copies));

        var notNullCheck = NotNullSteps.CheckName(facts.NewColumn);
        var newColumn = table.Column(facts.NewColumn);
        var needsNotNull = facts.OldNotNull && newColumn is { NotNull: false };
        if (needsNotNull)
        {
            steps.AddRange(await NotNullSteps.AddAndValidateAsync(context, table, newColumn!, notNullCheck, ct).ConfigureAwait(false));
        }

        // Before PostgreSQL 12 SET NOT NULL would scan the table under ACCESS EXCLUSIVE: the validated check stays instead.
        var setNotNull = needsNotNull && context.ServerVersion >= NotNullSteps.SetNotNullSkipsScanFrom;

        // A partitioned index cannot be dropped concurrently: the old column's go with it in the swap.
        if (!partitioned)
        {
            steps.AddRange(copier.EarlyDropSteps(context, table, facts.ColumnNumber, facts.Copies));
        }

        steps.Add(new DdlStep(
            $"Refresh the planner statistics of {New}",
            new[] { $"ANALYZE {TableName} ({New})" },
            LockLevel.ShareUpdateExclusive,
            TableName,
            "samples the table; does not block reads or writes"));

        var swap = new List<string>(Sync.DropStatements());
        swap.AddRange(facts.Conversion.DropStatements);
        if (facts.OldDefault is not null && newColumn?.Default is null)
        {
            swap.Add($"ALTER TABLE {TableName} ALTER COLUMN {New} SET DEFAULT {facts.OldDefault}");
        }

        foreach (var sequence in await OwnedSequencesAsync(context, ct).ConfigureAwait(false))
        {
            // A sequence OWNED BY the old column would be dropped with it.
            swap.Add($"ALTER SEQUENCE {sequence} OWNED BY {TableName}.{New}");
            swap.AddRange(SequenceStatements(sequence));
        }

        if (setNotNull)
        {
            swap.Add($"ALTER TABLE {TableName} ALTER COLUMN {New} SET NOT NULL");
            swap.Add($"ALTER TABLE {TableName} DROP CONSTRAINT {Ident.Quote(notNullCheck)}");
        }

        swap.AddRange(await SwapAfterNotNullAsync(context, table, ct).ConfigureAwait(false));

        // A partitioned table's primary key copy is made after the old column, whose key goes with it (PrimaryKeySwapAsync).
        var swapped = partitioned ? facts.Copies.Where(c => c.Kind != CopiedObjectKind.PrimaryKey).ToList() : facts.Copies;
        swap.AddRange(copier.SwapBeforeDrop(swapped));
        swap.Add($"ALTER TABLE {TableName} DROP COLUMN {Old}");
        if (facts.FinalName != facts.NewColumn)
        {
            swap.Add($"ALTER TABLE {TableName} RENAME COLUMN {New} TO {Ident.Quote(facts.FinalName)}");
        }

        swap.AddRange(copier.SwapAfterDrop(swapped));
        if (tree is not null)
        {
            swap.AddRange(await Partitioned.PrimaryKeySwapAsync(context, tree, table, facts.Copies, facts.OldColumn, facts.FinalName, ct).ConfigureAwait(false));
            swap.AddRange(await Partitioned.KeptIndexNamesAsync(context, facts.Copies, ct).ConfigureAwait(false));
            swap.AddRange(PartitionedCopy.ForeignKeyPartitionNames(tree, facts.Copies));
        }

        return (steps, swap);
    }

    /// <summary>The contract's one-line summary.</summary>
    protected abstract string ContractSummary { get; }

    /// <summary>Swap statements once the new column is NOT NULL, before the old one goes (a type change hands an identity over here).</summary>
    protected virtual Task<IReadOnlyList<string>> SwapAfterNotNullAsync(PlanningContext context, TableInfo table, CancellationToken ct)
        => Task.FromResult<IReadOnlyList<string>>(Array.Empty<string>());

    /// <summary>Statements for a sequence owned by the column, after it is handed to the new column (a type change widens it).</summary>
    protected virtual IEnumerable<string> SequenceStatements(string sequence) => Array.Empty<string>();

    public override bool CanUndoFrom(MigrationPhase phase) => base.CanUndoFrom(phase) || phase == MigrationPhase.Contracting;

    public override async Task<PhaseDesign> PlanUndoAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
        => new(TableName, $"Undo the {Noun} of {TableName}.{Old}", await PlanUndoStepsAsync(context, migration, Array.Empty<string>(), ct).ConfigureAwait(false));

    /// <summary>The undo's steps; the first (drop the trigger and the new column) also locks <paramref name="alsoLocks"/>, the tables whose foreign key copies it drops.</summary>
    protected async Task<List<DdlStep>> PlanUndoStepsAsync(PlanningContext context, LedgerRow migration, IReadOnlyList<string> alsoLocks, CancellationToken ct)
    {
        var facts = Facts;
        var table = await RequireTableAsync(context, migration, ct).ConfigureAwait(false);
        var statements = new List<string>(Sync.DropStatements());
        statements.AddRange(facts.Conversion.DropStatements);

        // Migrations expanded by earlier versions moved the old default into the trigger.
        if (facts.OldDefault is not null && table.Column(facts.OldColumn)?.Default is null)
        {
            statements.Add($"ALTER TABLE {TableName} ALTER COLUMN {Old} SET DEFAULT {facts.OldDefault}");
        }

        statements.AddRange(Copier.UndoBeforeDropStatements(facts.Copies));
        if (table.Column(facts.NewColumn) is not null)
        {
            // Its indexes, constraints (NOT VALID or not), statistics and an INVALID index left by a failed build go with it.
            statements.Add($"ALTER TABLE {TableName} DROP COLUMN {New}");
        }

        var steps = new List<DdlStep>
        {
            new($"Drop the sync trigger and the new column {New}", statements, LockLevel.AccessExclusive, TableName, "catalog-only changes; DROP COLUMN does not rewrite the table") { AlsoLocks = alsoLocks },
        };

        // A contract that stopped half-way may have dropped (or left INVALID) the old column's plain indexes.
        steps.AddRange(Copier.UndoSteps(context, table, facts.Copies));
        return steps;
    }

    /// <summary>What every copy shows about itself in the migration object.</summary>
    protected Dictionary<string, string> DescribeCopy() => new()
    {
        ["OldColumn"] = Old,
        ["NewColumn"] = New,
        ["SyncTrigger"] = Ident.Quote(Facts.OldNameTrigger),
        ["SyncTriggerOfNewName"] = Facts.NewNameTrigger.Length > 0 ? Ident.Quote(Facts.NewNameTrigger) : "",
        ["SyncFunction"] = Sync.QualifiedFunction,
        ["SyncDefaults"] = Facts.Defaults.ToString(),
        ["RebuiltOnNewColumn"] = string.Join(", ", Facts.Copies.Select(c => $"{c.Kind} {Ident.Quote(c.Final)}")),
    };

    /// <summary>
    /// The expand: one catalog-only transaction (the new column as <paramref name="newColumnDefinition"/>,
    /// the old column's attributes and grants, the sync trigger, NOT VALID constraints, statistics
    /// objects), then the concurrent index builds.
    /// </summary>
    protected IReadOnlyList<DdlStep> CopyExpandSteps(PlanningContext context, TableInfo table, ColumnInfo column, string newColumnDefinition, bool copyStorage, string? warning)
        => Copier.ExpandIndexSteps(context, Facts.Copies).Prepend(CopyCatalogStep(table, column, newColumnDefinition, copyStorage, warning, Facts.Copies)).ToList();

    /// <summary>
    /// <see cref="CopyExpandSteps"/>, or on a partitioned table (<see cref="PartitionedCopy"/>) the
    /// same catalog changes on the parent in two transactions: the new column under ACCESS
    /// EXCLUSIVE, then the sync trigger under SHARE ROW EXCLUSIVE (both on every partition; see
    /// <see cref="PartitionedCopy.SyncTriggerStep"/>), without the NOT VALID checks and foreign keys
    /// (added per partition at contract); then each index copy and unique constraint copy built
    /// partition by partition, and the primary key copy's index on each leaf (the key is made in the swap).
    /// </summary>
    protected async Task<IReadOnlyList<DdlStep>> CopyExpandStepsAsync(PlanningContext context, TableInfo table, ColumnInfo column, string newColumnDefinition, bool copyStorage, string? warning, CancellationToken ct)
    {
        if (table.Kind != RelationKind.PartitionedTable)
        {
            return CopyExpandSteps(context, table, column, newColumnDefinition, copyStorage, warning);
        }

        var catalog = CopyCatalogStep(table, column, newColumnDefinition, copyStorage, warning, Facts.Copies.Where(c => !c.Kind.IsNotValidConstraint()).ToList(), withSync: false);
        var sync = Partitioned.SyncTriggerStep(Facts.Conversion.CreateStatements.Concat(Sync.CreateStatements()).ToList());
        var steps = new List<DdlStep> { catalog, sync };
        var tree = await PartitionTree.ReadAsync(context.Connection, table.Oid, ct).ConfigureAwait(false);
        steps.AddRange(await Partitioned.IndexStepsAsync(context, tree, Facts.Copies, ct).ConfigureAwait(false));
        steps.AddRange(await Partitioned.UniqueStepsAsync(context, tree, table, Facts.Copies, Facts.OldColumn, Facts.NewColumn, ct).ConfigureAwait(false));
        steps.AddRange(await Partitioned.PrimaryKeyIndexStepsAsync(context, tree, Facts.Copies, ct).ConfigureAwait(false));
        return steps;
    }

    /// <summary>The expand's catalog transaction under ACCESS EXCLUSIVE; <paramref name="withSync"/> says whether the sync trigger (and its function) is installed in it (on a partitioned table it has a step of its own).</summary>
    private DdlStep CopyCatalogStep(TableInfo table, ColumnInfo column, string newColumnDefinition, bool copyStorage, string? warning, IReadOnlyList<CopiedObject> catalogCopies, bool withSync = true)
    {
        var facts = Facts;
        var first = new List<string>
        {
            $"ALTER TABLE {TableName} ADD COLUMN {New} {newColumnDefinition}",
        };
        first.AddRange(ColumnAttributes.CopyStatements(TableName, column, New, copyStorage));
        if (facts.Defaults == SyncDefaults.OnBoth)
        {
            // Set after ADD COLUMN, so existing rows stay NULL (not yet copied) rather than taking the default.
            first.Add($"ALTER TABLE {TableName} ALTER COLUMN {New} SET DEFAULT {facts.OldDefault}");
        }

        if (withSync)
        {
            first.AddRange(facts.Conversion.CreateStatements);
            first.AddRange(Sync.CreateStatements());
        }

        first.AddRange(table.Grants.Where(g => g.Column == facts.OldColumn).Select(g => CompatibilityView.GrantSql(g with { Column = facts.NewColumn }, TableName)));
        first.AddRange(Copier.ExpandCatalogStatements(catalogCopies));

        return new(
            $"Add {New}{(withSync ? ", the sync trigger" : "")}{(catalogCopies.Any(c => c.Kind.IsNotValidConstraint()) ? " and NOT VALID constraints" : "")}",
            first,
            LockLevel.AccessExclusive,
            TableName,
            $"adding a nullable column (a default is set only afterwards, so no existing row is written){(withSync ? ", triggers" : "")}, statistics objects and NOT VALID constraints are catalog changes: no scan, no rewrite"
                + (table.Kind == RelationKind.PartitionedTable ? "; on a partitioned table each statement recurses to every partition (LOCK TABLE locks them all first)" : "")
                + (warning is null ? "" : ". " + warning));
    }

    /// <summary>The sync function and triggers must not take a name already used (a raw 42723/42710 otherwise).</summary>
    protected async Task RequireSyncNamesFreeAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        if (await context.Catalog.DescribeFunctionAsync(Facts.FunctionSchema, Facts.FunctionName, ct).ConfigureAwait(false) is { } function)
        {
            throw new ZdtException(
                ErrorIds.NameTaken,
                ErrorKind.ResourceExists,
                $"The sync function of this {Noun} would be {Sync.QualifiedFunction}, but function {function} already exists (left by an earlier migration of this table, or created by someone else). Drop it if it is not in use; nothing was changed.")
            { TargetObject = Sync.QualifiedFunction };
        }

        foreach (var trigger in new[] { Facts.OldNameTrigger, Facts.NewNameTrigger }.Where(t => table.Triggers.Any(x => x.Name == t)))
        {
            throw new ZdtException(
                ErrorIds.NameTaken,
                ErrorKind.ResourceExists,
                $"{TableName} already has a trigger named {Ident.Quote(trigger)}, the name of this {Noun}'s sync trigger. Rename or drop it first; nothing was changed.")
            { TargetObject = trigger };
        }
    }

    protected async Task<TableInfo> RequireTableAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var facts = Facts;
        var table = await context.Catalog.ReadTableAsync(facts.TableOid, ct).ConfigureAwait(false);
        if (table is null || table.Name != facts.Table || table.Schema != facts.Schema || table.Column(facts.OldColumn) is null)
        {
            throw new ZdtException(
                ErrorIds.TableChangedElsewhere,
                ErrorKind.InvalidOperation,
                $"Migration {migration.Id} expected {TableName} with column {Old}, but {(table is null ? "the table is gone" : $"it is now {table.QualifiedName}{(table.Column(facts.OldColumn) is null ? $" without {Old}" : "")}")}. Nothing was changed.");
        }

        return table;
    }

    /// <summary>Lists, for one error, what depends on the column and no copy can carry (views, generated columns, ...).</summary>
    protected static async Task<List<string>> UncarriedDependentsAsync(PlanningContext context, TableInfo table, ColumnInfo column, Func<ColumnDependent, bool> alsoCarried, string viewAdvice, CancellationToken ct)
    {
        var problems = new List<string>();
        foreach (var dependent in await context.Catalog.ColumnDependentsAsync(table.Oid, column.Number, ct).ConfigureAwait(false))
        {
            var carried = dependent.Catalog switch
            {
                "pg_class" => dependent.Detail is "i" or "I" or "S",
                "pg_constraint" => dependent.Detail == "own",
                "pg_attrdef" => dependent.Detail == "own",
                "pg_statistic_ext" => true,
                _ => false,
            };
            if (!carried && !alsoCarried(dependent))
            {
                problems.Add(dependent.Catalog switch
                {
                    "pg_rewrite" => $"{dependent.Description} uses it ({viewAdvice})",
                    "pg_constraint" => $"{dependent.Description} in another table references it",
                    "pg_attrdef" => $"{dependent.Description} (a generated column) is computed from it",
                    _ => $"{dependent.Description} depends on it",
                });
            }
        }

        return problems;
    }

    private async Task<IReadOnlyList<string>> OwnedSequencesAsync(PlanningContext context, CancellationToken ct)
    {
        var dependents = await context.Catalog.ColumnDependentsAsync(Facts.TableOid, Facts.ColumnNumber, ct).ConfigureAwait(false);
        return dependents.Where(d => d.Catalog == "pg_class" && d.Detail == "S").Select(d => Ident.Qualify(d.RelationSchema!, d.RelationName!)).ToList();
    }
}
