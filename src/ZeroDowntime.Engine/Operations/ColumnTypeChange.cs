using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations.ColumnCopy;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Change a column's type (integer to bigint, even on the primary key) without rewriting the table
/// under ACCESS EXCLUSIVE. When the server can change the type without a rewrite (a longer varchar,
/// varchar to text, more numeric precision: asked of the server on an empty copy of the table),
/// expand runs the plain ALTER COLUMN TYPE, a catalog change held for milliseconds, and the
/// migration only waits for Complete-Contract to free the table. Otherwise it is a column copy
/// (<see cref="ColumnCopyOperation"/>): a shadow column of the new type kept in step by the sync
/// trigger through the conversion (USING, or a cast), the primary key's index and every dependent
/// object rebuilt on it concurrently or NOT VALID, backfill, parity, and a contract whose one short
/// transaction drops the old column and gives the shadow the column's name. The application keeps
/// writing the column's own name throughout; a value that does not convert leaves the shadow NULL
/// and is counted by parity, which the contract requires to be zero.
/// </summary>
internal sealed class ColumnTypeChange : ColumnCopyOperation
{
    public const string KindName = "ChangeColumnType";

    public const string CopyStrategy = "Copy";

    public const string InPlaceStrategy = "InPlace";

    private const string FunctionQuote = "$zdt_conv$";

    private readonly Spec _spec;

    public ColumnTypeChange(Spec spec)
    {
        _spec = spec;
    }

    /// <summary>What the ledger stores about a type change.</summary>
    internal sealed record Spec(string Schema, string Table, string Column, string Type) : ColumnCopySpec
    {
        /// <summary>Old to new, an expression over the column's name (as ALTER COLUMN TYPE ... USING takes it).</summary>
        public string? Using { get; init; }

        /// <summary>New to old, an expression over the column's name (the sync trigger's other direction).</summary>
        public string? ReverseUsing { get; init; }

        /// <summary>Take the other tables' foreign keys that reference the column along.</summary>
        public bool Cascade { get; init; }

        /// <summary>The application's writes of a value that does not convert fail in the sync trigger (default: the shadow stays NULL, counted by parity).</summary>
        public bool RejectUnconvertibleWrites { get; init; }

        /// <summary>The old-to-new function of the sync trigger that raises instead of giving NULL (with RejectUnconvertibleWrites), else empty.</summary>
        public string StrictConvertFunction { get; init; } = "";

        public string Strategy { get; init; } = "";

        /// <summary>The new type as the server spells it (format_type).</summary>
        public string CanonicalType { get; init; } = "";

        public string OldType { get; init; } = "";

        public string ShadowColumn { get; init; } = "";

        /// <summary>Some old values may not convert (no implicit cast, a type modifier, or a USING expression).</summary>
        public bool ConversionCanFail { get; init; }

        /// <summary>The old-to-new function (when the conversion can fail or has a USING expression), else empty.</summary>
        public string ConvertFunction { get; init; } = "";

        /// <summary>The new-to-old function (with -ReverseUsing), else empty.</summary>
        public string RevertFunction { get; init; } = "";

        /// <summary>
        /// With -Cascade: the other tables' columns that reference this one and change type with it,
        /// each a column copy of its own (shadow column, sync trigger, backfill, parity) on its table.
        /// </summary>
        public IReadOnlyList<Spec> Referencing { get; init; } = Array.Empty<Spec>();

        /// <summary>For a referencing column: its table's foreign key to the changed column (rebuilt by the changed column's copy).</summary>
        public string ReferencingConstraint { get; init; } = "";

        /// <summary>The referencing tables (oids), which no other migration may take until this one ends (<see cref="MigrationLedger.HeldTablesKey"/>).</summary>
        public IReadOnlyList<uint> HeldTableOids { get; init; } = Array.Empty<uint>();

        /// <summary>The referencing tables (qualified), locked after this one, in this order, by the contract's swap.</summary>
        public IReadOnlyList<string> HeldTables { get; init; } = Array.Empty<string>();
    }

    /// <summary>The referencing columns' copies (-Cascade).</summary>
    private IReadOnlyList<ColumnTypeChange> Members => _spec.Referencing.Select(r => new ColumnTypeChange(r)).ToList();

    public override string? RequestIdentity => MigrationLedger.ToJson(new { _spec.Schema, _spec.Table, _spec.Column, _spec.Type, _spec.Using, _spec.ReverseUsing, _spec.Cascade, _spec.RejectUnconvertibleWrites });

    public override string Kind => KindName;

    private bool InPlace => _spec.Strategy == InPlaceStrategy;

    public override MigrationPhase ContractFrom => InPlace ? MigrationPhase.Expanded : MigrationPhase.Verified;

    // The application writes only the column's own name, so only it carries the default; the
    // shadow takes it over at contract (where a plain ALTER COLUMN TYPE keeps it).
    protected override ColumnCopyFacts Facts
        => ColumnCopyFacts.Of(_spec, _spec.Schema, _spec.Table, _spec.Column, _spec.ShadowColumn, _spec.Column, _spec.OldDefault is null ? SyncDefaults.None : SyncDefaults.OnOldOnly, Conversion, newNameInObjectNames: false);

    protected override string Noun => "type change";

    protected override string ContractSummary => $"Complete the type change of {TableName}.{Old} to {_spec.CanonicalType}: drop the old column, the shadow column takes its name"
        + (_spec.Referencing.Count > 0 ? $"; the same, in the same transaction, for {string.Join(", ", _spec.Referencing.Select(r => $"{Ident.Qualify(r.Schema, r.Table)}.{Ident.Quote(r.Column)}"))}" : "");

    public override IReadOnlyList<ParityPart> ParityParts => Members.Select(m => m.OwnParityPart).Prepend(OwnParityPart).ToList();

    public override string ParityMismatch(string relation)
        => Conversion.Unconvertible($"{relation}.{Old}") is { } bad ? $"{Sync.OutOfSync(relation)} OR {bad}" : Sync.OutOfSync(relation);

    protected override string MismatchMeaning => $"are not converted to {_spec.CanonicalType} yet, or hold a value of {Old} that does not convert (the shadow column {New} is NULL for them)";

    protected override string MismatchAdvice => $"Correct those values through {Old} (the trigger converts them as they are written) or give -Using an expression that converts them, then run Invoke-Backfill and Test-ColumnParity.";

    private string QualifiedConvert => Ident.Qualify(_spec.FunctionSchema, _spec.ConvertFunction);

    private string QualifiedRevert => Ident.Qualify(_spec.FunctionSchema, _spec.RevertFunction);

    private ColumnConversion Conversion
    {
        get
        {
            var create = new List<string>();
            var drop = new List<string>();
            var up = $"({ColumnConversion.Placeholder})::{_spec.CanonicalType}";
            if (_spec.ConvertFunction.Length > 0)
            {
                up = $"{QualifiedConvert}({ColumnConversion.Placeholder})";
                create.Add(FunctionSql(QualifiedConvert, _spec.OldType, _spec.CanonicalType, _spec.Using, _spec.ConversionCanFail));
                drop.Add($"DROP FUNCTION IF EXISTS {QualifiedConvert}({_spec.OldType})");
            }

            string? triggerUp = null;
            if (_spec.StrictConvertFunction.Length > 0)
            {
                var strict = Ident.Qualify(_spec.FunctionSchema, _spec.StrictConvertFunction);
                triggerUp = $"{strict}({ColumnConversion.Placeholder})";
                create.Add(FunctionSql(strict, _spec.OldType, _spec.CanonicalType, _spec.Using, nullWhenInvalid: false, explain: true));
                drop.Add($"DROP FUNCTION IF EXISTS {strict}({_spec.OldType})");
            }

            var down = $"({ColumnConversion.Placeholder})::{_spec.OldType}";
            if (_spec.RevertFunction.Length > 0)
            {
                down = $"{QualifiedRevert}({ColumnConversion.Placeholder})";
                create.Add(FunctionSql(QualifiedRevert, _spec.CanonicalType, _spec.OldType, _spec.ReverseUsing, nullWhenInvalid: false));
                drop.Add($"DROP FUNCTION IF EXISTS {QualifiedRevert}({_spec.CanonicalType})");
            }

            return new ColumnConversion(up, down) { CanFail = _spec.ConversionCanFail, TriggerUp = triggerUp, CreateStatements = create, DropStatements = drop };
        }
    }

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        var table = await TableResolver.RequireFreeTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: true, ct).ConfigureAwait(false);
        Ident.Validate(_spec.Column, "column name");
        var column = table.Column(_spec.Column) ?? throw new ZdtException(
            ErrorIds.ColumnNotFound,
            ErrorKind.ObjectNotFound,
            $"Column {Old} does not exist in {table.QualifiedName}. Names are exact (case-sensitive). Nothing was changed.")
        { TargetObject = $"{table.QualifiedName}.{Old}" };
        SqlTokenizer.RequireFragment(_spec.Type, "type");
        if (_spec.Using is not null)
        {
            SqlTokenizer.RequireFragment(_spec.Using, "USING expression");
        }

        if (_spec.ReverseUsing is not null)
        {
            SqlTokenizer.RequireFragment(_spec.ReverseUsing, "reverse USING expression");
        }

        var probe = await ProbeAsync(context, table, column, ct).ConfigureAwait(false);
        if (probe.Type == column.Type && _spec.Using is null)
        {
            throw new ZdtException(ErrorIds.SameType, ErrorKind.InvalidArgument, $"{table.QualifiedName}.{Old} is already {column.Type}; nothing to do.") { TargetObject = $"{table.QualifiedName}.{Old}" };
        }

        var views = (await UncarriedDependentsAsync(context, table, column, d => d.Catalog != "pg_rewrite", "a view's column type cannot change under it; drop the view, change the type, create the view again", ct).ConfigureAwait(false)).ToList();
        var checks = table.Constraints.Any(c => c.Type == ConstraintType.Check && c.Columns.Contains(column.Number));
        if (!probe.Rewrites && !checks)
        {
            RefuseIfAny(table, views);
            return InPlaceDesign(table, column, probe.Type);
        }

        await RefuseWhatCannotBeCarriedAsync(context, table, column, views, ct).ConfigureAwait(false);
        var spec = await CopySpecAsync(context, table, column, probe, ct).ConfigureAwait(false);
        var members = _spec.Cascade ? await PlanReferencingAsync(context, table, column, probe.Type, ct).ConfigureAwait(false) : new List<ReferencingCopy>();
        var held = _spec.Cascade ? await ReferencingTablesAsync(context, table, column, ct).ConfigureAwait(false) : new List<TableInfo>();
        spec = spec with
        {
            // The referencing foreign keys' copies go from each referencing column's shadow to this one's.
            Copies = spec.Copies.Select(c => members.FirstOrDefault(m => c.Kind == CopiedObjectKind.IncomingForeignKey && m.Spec.ReferencingConstraint == c.Original && m.Table.Schema == c.ObjectSchema && m.Table.Name == c.OnTable) is { Spec: { } member }
                ? c with { Definition = ReferencingHead(c.Definition, member) }
                : c).ToList(),
            Referencing = members.Select(m => m.Spec).ToList(),
            HeldTableOids = held.Select(t => t.Oid).ToList(),
            HeldTables = held.Select(t => t.QualifiedName).ToList(),
        };
        var planner = new ColumnTypeChange(spec);
        if (table.Kind == RelationKind.PartitionedTable)
        {
            // The copy on a partitioned table is the rename's: trigger on the parent, indexes and
            // checks partition by partition, the backfill and parity leaf by leaf.
            await planner.Partitioned.RequireCopyableAsync(context, table, column, spec.Copies, "change the type of", ct).ConfigureAwait(false);

            // Backfilled leaf partition by leaf partition, each by its own key.
            await Partitions.PartitionLeaves.RequireWalkableAsync(context, table, "A type change by copy backfills the shadow column", ct).ConfigureAwait(false);
        }

        await DependentObjectCopier.RequireNamesFreeAsync(context, table, spec.Copies, ct).ConfigureAwait(false);
        await planner.RequireSyncNamesFreeAsync(context, table, ct).ConfigureAwait(false);
        var warning = spec.ConversionCanFail ? $"Values of {Old} that do not convert to {probe.Type} leave {Ident.Quote(spec.ShadowColumn)} NULL and are counted by Test-ColumnParity; the contract refuses while any remain" : null;
        var steps = (await planner.CopyExpandStepsAsync(context, table, column, probe.Type, copyStorage: false, warning, ct).ConfigureAwait(false)).ToList();
        foreach (var (childTable, childColumn, member) in members)
        {
            var memberPlanner = new ColumnTypeChange(member);
            await DependentObjectCopier.RequireNamesFreeAsync(context, childTable, member.Copies, ct).ConfigureAwait(false);
            await memberPlanner.RequireSyncNamesFreeAsync(context, childTable, ct).ConfigureAwait(false);
            steps.AddRange(memberPlanner.CopyExpandSteps(context, childTable, childColumn, member.CanonicalType, copyStorage: false, null));
        }

        return new ExpandDesign(
            table,
            $"Change the type of {TableName}.{Old} from {column.Type} to {probe.Type} by copy: add a shadow column of the new type, keep it in step by trigger, rebuild the primary key, constraints and indexes on it without long locks"
                + (members.Count > 0 ? $"; the same for the referencing columns {string.Join(", ", members.Select(m => $"{m.Table.QualifiedName}.{Ident.Quote(m.Column.Name)}"))}" : ""),
            steps,
            Column: _spec.Column,
            NewName: null,
            Strategy: CopyStrategy,
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: table.EstimatedRows + members.Select(m => m.Table).DistinctBy(t => t.Oid).Sum(t => t.EstimatedRows))
        {
            HeldTableOids = spec.HeldTableOids,
        };
    }

    /// <summary>The ledger facts of a copy of <paramref name="column"/> (this column, or a referencing one) to the probed type.</summary>
    private async Task<Spec> CopySpecAsync(PlanningContext context, TableInfo table, ColumnInfo column, ProbeResult probe, CancellationToken ct)
    {
        if (table.Kind != RelationKind.PartitionedTable)
        {
            // A partitioned table's leaves are checked after what is wrong with the column itself (PlanExpandAsync).
            BatchKey.RequireWalkable(table, context.ServerVersion, "A type change by copy backfills the shadow column");
        }

        var shadow = Ident.Derive("zdt_", _spec.Column, "new");
        if (table.Column(shadow) is not null)
        {
            throw new ZdtException(ErrorIds.NameTaken, ErrorKind.ResourceExists, $"{table.QualifiedName} already has a column {Ident.Quote(shadow)}, the name of this type change's shadow column (left by an earlier attempt?). Drop it if it is not in use; nothing was changed.");
        }

        var oldDefault = column.Default is null ? null : await context.Catalog.QualifiedDefaultAsync(table.Oid, column.Number, ct).ConfigureAwait(false);
        var statistics = await context.Catalog.ReadStatisticsAsync(table.Oid, ct).ConfigureAwait(false);
        var canFail = !probe.AlwaysConverts || _spec.Using is not null;
        var oid = table.Oid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var copies = new DependentObjectCopier(_spec.Schema, _spec.Table, _spec.Column, shadow, newNameInObjectNames: false).Plan(table, column, statistics, primaryKeyAndReferences: true);
        return _spec with
        {
            Strategy = CopyStrategy,
            CanonicalType = probe.Type,
            OldType = column.Type,
            ShadowColumn = shadow,
            TableOid = table.Oid,
            ColumnNumber = column.Number,
            OldDefault = oldDefault,
            OldNotNull = column.NotNull,
            ConversionCanFail = canFail,
            FunctionSchema = context.Ledger.SchemaName,
            FunctionName = SyncTrigger.DeriveFunctionName(table.Oid, _spec.Table, _spec.Column),
            TriggerName = SyncTrigger.DeriveOldNameTrigger(_spec.Column),
            NewNameTriggerName = SyncTrigger.DeriveNewNameTrigger(_spec.Column),
            ConvertFunction = canFail ? Ident.Derive("conv_", oid, _spec.Table, _spec.Column) : "",
            StrictConvertFunction = canFail && _spec.RejectUnconvertibleWrites ? Ident.Derive("conv_strict_", oid, _spec.Table, _spec.Column) : "",
            RevertFunction = _spec.ReverseUsing is null ? "" : Ident.Derive("revert_", oid, _spec.Table, _spec.Column),
            // A referencing column's own foreign key to the changed column is rebuilt by the changed column's copy, from shadow to shadow.
            Copies = copies.Where(c => !(c.Kind == CopiedObjectKind.ForeignKey && c.Original == _spec.ReferencingConstraint)).ToList(),
        };
    }

    /// <summary>The other tables whose foreign keys reference the column (locked by the swap in this order: by oid).</summary>
    private static async Task<List<TableInfo>> ReferencingTablesAsync(PlanningContext context, TableInfo table, ColumnInfo column, CancellationToken ct)
    {
        var tables = new List<TableInfo>();
        foreach (var reference in table.ReferencedBy.Where(r => r.ReferencedColumns.Contains(column.Number) && (r.TableSchema != table.Schema || r.TableName != table.Name)))
        {
            // Free: no other migration may run on a table this one changes (and holds until it ends).
            var referencing = await TableResolver.RequireFreeTableAsync(context, reference.TableSchema, reference.TableName, allowPartitioned: false, ct).ConfigureAwait(false);
            if (tables.All(t => t.Oid != referencing.Oid))
            {
                tables.Add(referencing);
            }
        }

        return tables.OrderBy(t => t.Oid).ToList();
    }

    /// <summary>
    /// -Cascade: each referencing column whose type is not the new one yet becomes a copy of its own
    /// (what a plain ALTER COLUMN TYPE of both tables gives). One level: a referencing column that
    /// is itself referenced is refused, as are multi-column foreign keys and USING expressions (the
    /// referencing values would need the same conversion).
    /// </summary>
    private async Task<List<ReferencingCopy>> PlanReferencingAsync(PlanningContext context, TableInfo table, ColumnInfo column, string type, CancellationToken ct)
    {
        var members = new List<ReferencingCopy>();
        var problems = new List<string>();
        foreach (var reference in table.ReferencedBy.Where(r => r.ReferencedColumns.Contains(column.Number) && (r.TableSchema != table.Schema || r.TableName != table.Name)))
        {
            var child = await TableResolver.RequireFreeTableAsync(context, reference.TableSchema, reference.TableName, allowPartitioned: false, ct).ConfigureAwait(false);
            var name = $"foreign key {Ident.Quote(reference.Name)} of {child.QualifiedName}";
            if (reference.Columns.Count != 1)
            {
                problems.Add($"{name} has several columns (change them with their own migrations)");
                continue;
            }

            var childColumn = child.ColumnByNumber(reference.Columns[0]);
            if (childColumn.Type == type)
            {
                // Already of the new type: only the foreign key is pointed at the new column.
                continue;
            }

            if (_spec.Using is not null || _spec.ReverseUsing is not null)
            {
                problems.Add($"{name}: its column {Ident.Quote(childColumn.Name)} would need the same -Using conversion (change it with its own type change first)");
                continue;
            }

            if (child.ReferencedBy.Any(r => r.ReferencedColumns.Contains(childColumn.Number)))
            {
                problems.Add($"{name}: its column {Ident.Quote(childColumn.Name)} is itself referenced by other foreign keys (-Cascade goes one level deep; change that column first)");
                continue;
            }

            var memberRequest = new Spec(child.Schema, child.Name, childColumn.Name, type) { ReferencingConstraint = reference.Name, RejectUnconvertibleWrites = _spec.RejectUnconvertibleWrites };
            var member = new ColumnTypeChange(memberRequest);
            var probe = await member.ProbeAsync(context, child, childColumn, ct).ConfigureAwait(false);
            var views = await UncarriedDependentsAsync(context, child, childColumn, d => d.Catalog != "pg_rewrite", "a view's column type cannot change under it; drop the view, change the type, create the view again", ct).ConfigureAwait(false);
            await member.RefuseWhatCannotBeCarriedAsync(context, child, childColumn, views, ct).ConfigureAwait(false);
            members.Add(new ReferencingCopy(child, childColumn, await member.CopySpecAsync(context, child, childColumn, probe, ct).ConfigureAwait(false)));
        }

        if (problems.Count > 0)
        {
            throw new ZdtException(
                ErrorIds.ColumnCannotBeCopied,
                ErrorKind.InvalidOperation,
                $"Cannot change the type of {table.QualifiedName}.{Old} with -Cascade: {string.Join("; ", problems)}. Nothing was changed.")
            { TargetObject = $"{table.QualifiedName}.{Old}" };
        }

        return members;
    }

    /// <summary>A referencing foreign key's copy made to go from the referencing column's shadow (its head names the referencing table's columns).</summary>
    private static string ReferencingHead(string definition, Spec member)
    {
        var referencesAt = ColumnReferenceRewriter.IndexOfKeyword(definition, "REFERENCES");
        return ColumnReferenceRewriter.Rename(definition[..referencesAt], member.Column, member.ShadowColumn) + definition[referencesAt..];
    }

    public override BackfillDesign? PlanBackfill(TableInfo table, LedgerRow migration)
    {
        if (InPlace)
        {
            return null;
        }

        if (_spec.Referencing.All(r => r.TableOid != table.Oid))
        {
            // The table, or one of its leaf partitions.
            return base.PlanBackfill(table, migration);
        }

        // A referencing table: one walk fills the shadow columns of all its referencing columns.
        var designs = Members.Where(m => m._spec.TableOid == table.Oid).Select(m => m.PlanBackfill(table, migration)!).ToList();
        return designs.Count == 1
            ? designs[0]
            : new BackfillDesign(a => string.Join(", ", designs.Select(d => d.SetClause(a))), a => "(" + string.Join(" OR ", designs.Select(d => d.PendingFilter(a))) + ")", string.Join(" and ", designs.Select(d => d.Description)));
    }

    public override IReadOnlyList<uint> BackfillTables(LedgerRow migration)
        => _spec.Referencing.Select(r => r.TableOid).Prepend(_spec.TableOid).Distinct().ToList();

    public override bool CanBackfillFrom(MigrationPhase phase) => !InPlace && base.CanBackfillFrom(phase);

    public override Task BeforeContractAsync(PlanningContext context, LedgerRow migration, MigrationEngine engine, CancellationToken ct)
        => InPlace ? Task.CompletedTask : base.BeforeContractAsync(context, migration, engine, ct);

    public override async Task<PhaseDesign> PlanContractAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        if (InPlace)
        {
            return new PhaseDesign(TableName, $"Complete the type change of {TableName}.{Old} to {_spec.CanonicalType} (changed in place at expand; no DDL left)", Array.Empty<DdlStep>());
        }

        if (_spec.HeldTables.Count == 0)
        {
            return await base.PlanContractAsync(context, migration, ct).ConfigureAwait(false);
        }

        // -Cascade: every table's preparation first (validations, index drops: no long lock), then
        // one swap of all the columns, so no moment exists where a foreign key joins two types.
        var (steps, swap) = await PlanContractPartsAsync(context, migration, ct).ConfigureAwait(false);
        foreach (var member in Members)
        {
            var (memberSteps, memberSwap) = await member.PlanContractPartsAsync(context, migration, ct).ConfigureAwait(false);
            steps.AddRange(memberSteps);
            swap.AddRange(memberSwap);
        }

        steps.Add(SwapStep(swap, _spec.HeldTables));
        return new PhaseDesign(TableName, ContractSummary, steps);
    }

    /// <summary>An in-place change is final at expand: going back is another type change (which may need the copy).</summary>
    public override bool CanUndoFrom(MigrationPhase phase) => !InPlace && base.CanUndoFrom(phase);

    public override async Task<PhaseDesign> PlanUndoAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        if (_spec.HeldTables.Count == 0)
        {
            return await base.PlanUndoAsync(context, migration, ct).ConfigureAwait(false);
        }

        // The foreign key copies (on the referencing tables) go first, with this table's new column;
        // then each referencing column's copy, on its own table.
        var steps = await PlanUndoStepsAsync(context, migration, _spec.HeldTables, ct).ConfigureAwait(false);
        foreach (var member in Members)
        {
            steps.AddRange(await member.PlanUndoStepsAsync(context, migration, Array.Empty<string>(), ct).ConfigureAwait(false));
        }

        return new PhaseDesign(TableName, $"Undo the type change of {TableName}.{Old} and of the referencing columns", steps);
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration)
    {
        var details = InPlace ? new Dictionary<string, string> { ["Column"] = Old } : DescribeCopy();
        details["OldType"] = _spec.OldType;
        details["NewType"] = _spec.CanonicalType;
        details["Strategy"] = _spec.Strategy;
        if (_spec.Using is not null)
        {
            details["Using"] = _spec.Using;
        }

        if (_spec.Referencing.Count > 0)
        {
            details["Referencing"] = string.Join(", ", _spec.Referencing.Select(r => $"{Ident.Qualify(r.Schema, r.Table)}.{Ident.Quote(r.Column)} ({r.OldType} to {r.CanonicalType}, shadow {Ident.Quote(r.ShadowColumn)})"));
        }

        return details;
    }

    /// <summary>A sequence owned by the column is widened with it (a plain ALTER COLUMN TYPE would leave a serial's sequence at the old maximum).</summary>
    protected override IEnumerable<string> SequenceStatements(string sequence)
    {
        var order = new[] { "smallint", "integer", "bigint" };
        var from = Array.IndexOf(order, _spec.OldType);
        var to = Array.IndexOf(order, _spec.CanonicalType);
        if (from >= 0 && to > from)
        {
            yield return $"ALTER SEQUENCE {sequence} AS {_spec.CanonicalType}";
        }
    }

    /// <summary>A referencing column (-Cascade) and the copy planned for it.</summary>
    private sealed record ReferencingCopy(TableInfo Table, ColumnInfo Column, Spec Spec);

    /// <summary>
    /// An identity is handed from the old column to the new one as ALTER COLUMN TYPE keeps it: the
    /// same sequence name, ALWAYS or BY DEFAULT, increment, start, cache, cycle and bounds (a bound
    /// that was the old type's own becomes the new type's, as ALTER SEQUENCE ... AS gives it), and
    /// its current value, so no key is handed out twice. An identity sequence cannot change owner,
    /// so within the swap's lock the old identity is dropped (with its sequence) and created again
    /// on the new column under the same name; its state is read there, after every writer is locked out.
    /// The sequence's grants (an application role's USAGE for nextval) and its comment are read
    /// before the drop and given to the new sequence: the grants are re-issued by the migrating
    /// role, so they name it as grantor.
    /// </summary>
    protected override async Task<IReadOnlyList<string>> SwapAfterNotNullAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        var old = table.Column(_spec.Column);
        if (old is not { IsIdentity: true } || await context.Catalog.IdentitySequenceAsync(table.Oid, old.Number, ct).ConfigureAwait(false) is not { } sequence)
        {
            return Array.Empty<string>();
        }

        var (min, max) = IntegerBounds(_spec.OldType) ?? throw new InvalidOperationException($"Identity column of type {_spec.OldType}.");
        var generated = old.Identity == 'a' ? "ALWAYS" : "BY DEFAULT";
        const string quote = "$zdt_identity$";
        var add = $"ALTER TABLE {TableName} ALTER COLUMN {New} ADD GENERATED {generated} AS IDENTITY (SEQUENCE NAME {sequence} INCREMENT BY %s START WITH %s CACHE %s %s %s %s)";
        return new[]
        {
            $"""
            DO {quote}
            DECLARE
              seq pg_catalog.pg_sequence;
              last_value bigint;
              called boolean;
              acl pg_catalog.aclitem[];
              note text;
              g record;
            BEGIN
              SELECT * INTO seq FROM pg_catalog.pg_sequence WHERE seqrelid = {Ident.Literal(sequence)}::pg_catalog.regclass;
              SELECT s.last_value, s.is_called INTO last_value, called FROM {sequence} s;
              SELECT c.relacl, pg_catalog.obj_description(c.oid, 'pg_class') INTO acl, note FROM pg_catalog.pg_class c WHERE c.oid = seq.seqrelid;
              ALTER TABLE {TableName} ALTER COLUMN {Old} DROP IDENTITY;
              EXECUTE pg_catalog.format({Ident.Literal(add)}, seq.seqincrement, seq.seqstart, seq.seqcache,
                CASE WHEN seq.seqincrement < 0 AND seq.seqmin = {min} THEN 'NO MINVALUE' ELSE 'MINVALUE ' || seq.seqmin END,
                CASE WHEN seq.seqincrement > 0 AND seq.seqmax = {max} THEN 'NO MAXVALUE' ELSE 'MAXVALUE ' || seq.seqmax END,
                CASE WHEN seq.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END);
              PERFORM pg_catalog.setval({Ident.Literal(sequence)}, last_value, called);
              IF note IS NOT NULL THEN
                EXECUTE pg_catalog.format('COMMENT ON SEQUENCE %s IS %L', {Ident.Literal(sequence)}, note);
              END IF;
              FOR g IN SELECT a.grantee, a.privilege_type, a.is_grantable FROM pg_catalog.aclexplode(acl) a LOOP
                EXECUTE pg_catalog.format('GRANT %s ON SEQUENCE %s TO %s%s', g.privilege_type, {Ident.Literal(sequence)},
                  CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END,
                  CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
              END LOOP;
            END
            {quote}
            """,
        };
    }

    /// <summary>The range of an integer type (an identity's own bounds), or null for other types.</summary>
    private static (long Min, long Max)? IntegerBounds(string type) => type.Trim().ToLowerInvariant() switch
    {
        "smallint" or "int2" => (short.MinValue, short.MaxValue),
        "integer" or "int" or "int4" => (int.MinValue, int.MaxValue),
        "bigint" or "int8" => (long.MinValue, long.MaxValue),
        _ => null,
    };

    private sealed record ProbeResult(string Type, bool Rewrites, bool AlwaysConverts);

    /// <summary>
    /// Asks the server, on an empty copy of the table with its indexes and defaults: the new type's
    /// canonical spelling, whether ALTER COLUMN TYPE would rewrite the table or an index, and whether
    /// every old value converts (an implicit cast to a type without modifier). It also checks the
    /// USING expressions and that the default still applies to the new type.
    /// </summary>
    private async Task<ProbeResult> ProbeAsync(PlanningContext context, TableInfo table, ColumnInfo column, CancellationToken ct)
        => await ServerProbe.RunAsync(
            context,
            $"type change of {Old} to {_spec.Type}",
            async probe =>
            {
                await probe.ExecuteAsync($"CREATE TEMP TABLE {ServerProbe.Table} (LIKE {table.QualifiedName} INCLUDING INDEXES INCLUDING DEFAULTS)").ConfigureAwait(false);
                var rewrites = await probe.AlterTypeRewritesAsync($"{Old} TYPE {_spec.Type}{(_spec.Using is null ? "" : $" USING ({_spec.Using})")}").ConfigureAwait(false);
                var row = await probe.RowAsync(
                    $"""
                    SELECT format_type(n.atttypid, n.atttypmod),
                           n.atttypmod = -1 AND (n.atttypid = o.atttypid OR EXISTS (SELECT 1 FROM pg_cast c WHERE c.castsource = o.atttypid AND c.casttarget = n.atttypid AND c.castcontext = 'i'))
                    FROM pg_attribute n, pg_attribute o
                    WHERE n.attrelid = '{ServerProbe.Table}'::regclass AND n.attname = $1 AND o.attrelid = $2::oid AND o.attnum = $3
                    """,
                    column.Name,
                    (long)table.Oid,
                    column.Number).ConfigureAwait(false);
                var type = (string)row[0]!;
                if (_spec.Using is not null)
                {
                    // The expression becomes a function of the column alone: the server checks that now.
                    var function = $"pg_temp.zdt_probe_conv";
                    await probe.ExecuteAsync(FunctionSql(function, column.Type, type, _spec.Using, nullWhenInvalid: true)).ConfigureAwait(false);
                    await probe.RowAsync($"SELECT {function}(NULL::{column.Type})").ConfigureAwait(false);
                }

                if (_spec.ReverseUsing is not null)
                {
                    var function = $"pg_temp.zdt_probe_revert";
                    await probe.ExecuteAsync(FunctionSql(function, type, column.Type, _spec.ReverseUsing, nullWhenInvalid: false)).ConfigureAwait(false);
                    await probe.RowAsync($"SELECT {function}(NULL::{type})").ConfigureAwait(false);
                }

                return new ProbeResult(type, rewrites, (bool)row[1]!);
            },
            ct).ConfigureAwait(false);

    /// <summary>
    /// A conversion function whose parameter is named as the column, so the user's expression over
    /// the column's name reads the value. With <paramref name="nullWhenInvalid"/> a value that does
    /// not convert (a data exception: bad text, out of range, too long) gives NULL instead of failing the write.
    /// </summary>
    /// With <paramref name="explain"/> such a value fails with a message that names the column and the type.
    private string FunctionSql(string qualifiedName, string fromType, string toType, string? expression, bool nullWhenInvalid, bool explain = false)
    {
        // Not Old/TableName: those go through Facts, which is built from this conversion.
        var column = Ident.Quote(_spec.Column);
        var handler = nullWhenInvalid ? "\nEXCEPTION WHEN data_exception THEN\n  RETURN NULL;"
            : explain ? $"\nEXCEPTION WHEN data_exception THEN\n  RAISE EXCEPTION 'ZeroDowntime: % is not a valid value of % while its type changes to % (%); the type change was started with -RejectUnconvertibleWrites', {column}, {Ident.Literal(column)}, {Ident.Literal(toType)}, SQLERRM USING ERRCODE = SQLSTATE;"
            : "";
        var sql = $"""
            CREATE FUNCTION {qualifiedName}({column} {fromType}) RETURNS {toType} LANGUAGE plpgsql AS {FunctionQuote}
            -- ZeroDowntime: converts {column} of {Ident.Qualify(_spec.Schema, _spec.Table)} from {fromType} to {toType} while a type change is in progress.
            BEGIN
              RETURN ({expression ?? column})::{toType};{handler}
            END
            {FunctionQuote}
            """;
        if (sql.Split(FunctionQuote).Length != 3)
        {
            throw new ZdtException(ErrorIds.InvalidSql, ErrorKind.InvalidArgument, $"The USING expression contains the text {FunctionQuote}, which the conversion function's body cannot hold.");
        }

        return sql;
    }

    private ExpandDesign InPlaceDesign(TableInfo table, ColumnInfo column, string type)
    {
        var spec = _spec with { Strategy = InPlaceStrategy, CanonicalType = type, OldType = column.Type, TableOid = table.Oid, ColumnNumber = column.Number };
        var step = new DdlStep(
            $"Change the type of {Old} to {type} in place",
            new[] { $"ALTER TABLE {TableName} ALTER COLUMN {Old} TYPE {type}{(_spec.Using is null ? "" : $" USING ({_spec.Using})")}" },
            LockLevel.AccessExclusive,
            TableName,
            "the server said (on an empty copy of the table) that this change rewrites neither the table nor an index: a catalog change held for milliseconds");
        return new ExpandDesign(table, $"Change the type of {TableName}.{Old} from {column.Type} to {type} in place (no rewrite, no copy)", new[] { step }, _spec.Column, null, InPlaceStrategy, MigrationLedger.ToJson(spec), null);
    }

    private static void RefuseIfAny(TableInfo table, List<string> problems)
    {
        if (problems.Count > 0)
        {
            throw new ZdtException(
                ErrorIds.ColumnCannotBeCopied,
                ErrorKind.InvalidOperation,
                $"Cannot change the type of a column of {table.QualifiedName}: {string.Join("; ", problems)}. Nothing was changed.");
        }
    }

    /// <summary>Lists, in one error, what a copy cannot carry; the referencing foreign keys in their own error unless -Cascade.</summary>
    private async Task RefuseWhatCannotBeCarriedAsync(PlanningContext context, TableInfo table, ColumnInfo column, List<string> views, CancellationToken ct)
    {
        var references = table.ReferencedBy.Where(r => r.ReferencedColumns.Contains(column.Number)).ToList();
        if (references.Count > 0 && !_spec.Cascade && references.All(r => r.TableSchema != table.Schema || r.TableName != table.Name))
        {
            throw new ZdtException(
                ErrorIds.ColumnReferenced,
                ErrorKind.InvalidOperation,
                $"{table.QualifiedName}.{Old} is referenced by foreign keys of other tables: {string.Join(", ", references.Select(r => $"{Ident.Quote(r.Name)} of {Ident.Qualify(r.TableSchema, r.TableName)}"))}. Give -Cascade to change the referencing columns' type too, in the same migration (each gets a shadow column, trigger and backfill of its own; one contract swaps them all); nothing was changed.")
            { TargetObject = $"{table.QualifiedName}.{Old}" };
        }

        var problems = new List<string>(views);
        if (column.IsIdentity && IntegerBounds(_spec.Type) is null)
        {
            problems.Add($"it is an identity column, and an identity must be smallint, integer or bigint (drop the identity first to change it to {_spec.Type})");
        }

        if (column.IsGenerated)
        {
            problems.Add("it is a generated column");
        }

        if (column.IsIdentity && table.Kind == RelationKind.PartitionedTable)
        {
            problems.Add("it is an identity column of a partitioned table, whose hand-over to the new column ZeroDowntime does not build yet");
        }

        problems.AddRange(table.Constraints
            .Where(c => c.Columns.Contains(column.Number) && c.Type is ConstraintType.Exclusion or ConstraintType.Trigger or ConstraintType.Other)
            .Select(c => $"constraint {Ident.Quote(c.Name)} ({c.Type}) cannot be rebuilt without a long lock"));
        problems.AddRange(references.Where(r => r.TableSchema == table.Schema && r.TableName == table.Name).Select(r => $"foreign key {Ident.Quote(r.Name)} references the table itself"));
        problems.AddRange(await UncarriedDependentsAsync(context, table, column, d => d.Catalog == "pg_rewrite" || (d.Catalog == "pg_constraint" && d.Detail == "other"), "", ct).ConfigureAwait(false));
        RefuseIfAny(table, problems);
    }
}
