using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Rename a column by copy (expand/contract), so old and new application versions run side by side.
/// Expand: add the new column (same type, collation, comment, statistics target; nullable), move the
/// old column's default into a sync trigger, install the trigger, and give the new column what the
/// new version may rely on at once: CHECKs and foreign keys as NOT VALID, every index and unique
/// constraint built CONCURRENTLY. Backfill: copy old to new for rows that predate the trigger.
/// Contract (after parity): validate, NOT NULL through a validated CHECK, then in one short
/// transaction drop the trigger, move the default, drop the old column and give the new objects
/// their final names. Undo: drop everything built; the table is as before.
/// </summary>
internal sealed class ColumnRename : MigrationOperation
{
    public const string KindName = "RenameColumn";

    private readonly Spec _spec;

    public ColumnRename(Spec spec)
    {
        _spec = spec;
    }

    /// <summary>An index, unique constraint, check or foreign key rebuilt on the new column.</summary>
    /// <param name="Kind">Index, Unique, Check or ForeignKey.</param>
    /// <param name="Original">The name of the object on the old column.</param>
    /// <param name="Building">The name it has while both columns exist.</param>
    /// <param name="Final">The name it gets at contract (the old column name replaced by the new one, or the original).</param>
    /// <param name="Definition">The definition rewritten for the new column.</param>
    internal sealed record CopiedObject(string Kind, string Original, string Building, string Final, string Definition)
    {
        /// <summary>For a plain index: how to build the original again (CONCURRENTLY), should an undo need it.</summary>
        public string? OriginalDefinition { get; init; }
    }

    /// <summary>What the ledger stores about a column rename.</summary>
    internal sealed record Spec(string Schema, string Table, string Column, string NewName)
    {
        public uint TableOid { get; init; }

        public short ColumnNumber { get; init; }

        /// <summary>The old column's default, schema-qualified; the trigger applies it while both columns exist.</summary>
        public string? OldDefault { get; init; }

        public bool OldNotNull { get; init; }

        public string FunctionSchema { get; init; } = "";

        public string FunctionName { get; init; } = "";

        public string TriggerName { get; init; } = "";

        public IReadOnlyList<CopiedObject> Copies { get; init; } = Array.Empty<CopiedObject>();
    }

    public override string Kind => KindName;

    public override MigrationPhase ContractFrom => MigrationPhase.Verified;

    /// <summary>The old and new column, for the parity check.</summary>
    public (string Old, string New) ParityColumns => (_spec.Column, _spec.NewName);

    private string TableName => Ident.Qualify(_spec.Schema, _spec.Table);

    private string Old => Ident.Quote(_spec.Column);

    private string New => Ident.Quote(_spec.NewName);

    private string Function => Ident.Qualify(_spec.FunctionSchema, _spec.FunctionName);

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        var table = await TableResolver.RequireFreeTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: false, ct).ConfigureAwait(false);
        var column = RequireColumns(table);
        await RefuseWhatCannotBeCarriedAsync(context, table, column, ct).ConfigureAwait(false);

        var spec = _spec with
        {
            TableOid = table.Oid,
            ColumnNumber = column.Number,
            OldDefault = column.Default is null ? null : await context.Catalog.QualifiedDefaultAsync(table.Oid, column.Number, ct).ConfigureAwait(false),
            OldNotNull = column.NotNull,
            FunctionSchema = context.Ledger.SchemaName,
            FunctionName = Ident.Derive("sync_", _spec.Schema, _spec.Table, _spec.Column),
            TriggerName = Ident.Derive("zz_zdt_sync_", _spec.Column),
            Copies = PlanCopies(table, column),
        };
        var planner = new ColumnRename(spec);
        await planner.RequireCopyNamesFreeAsync(context, table, ct).ConfigureAwait(false);
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
        => new(
            alias => $"{New} = {alias}.{Old}",
            alias => $"{alias}.{New} IS DISTINCT FROM {alias}.{Old}",
            $"{New} = {Old}");

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
        var steps = new List<DdlStep>();
        foreach (var copy in _spec.Copies.Where(c => c.Kind is "Check" or "ForeignKey"))
        {
            var constraint = table.Constraints.FirstOrDefault(c => c.Name == copy.Building);
            if (constraint is { Validated: false })
            {
                steps.Add(Validate(copy.Building, copy.Kind == "ForeignKey" ? "checks every row against the referenced table" : "checks every row"));
            }
        }

        var notNullCheck = NotNullSteps.CheckName(_spec.NewName);
        var newColumn = table.Column(_spec.NewName);
        var needsNotNull = _spec.OldNotNull && newColumn is { NotNull: false };
        if (needsNotNull)
        {
            steps.AddRange(NotNullSteps.AddAndValidate(table, newColumn!, notNullCheck));
        }

        // Before PostgreSQL 12 SET NOT NULL would scan the table under ACCESS EXCLUSIVE: the validated check stays instead.
        var setNotNull = needsNotNull && context.ServerVersion >= NotNullSteps.SetNotNullSkipsScanFrom;

        // The old column's plain indexes go first, concurrently: dropped with the column they would
        // be unlinked while the swap below holds ACCESS EXCLUSIVE, for a time that grows with their size.
        foreach (var copy in _spec.Copies.Where(c => c.Kind == "Index" && table.Indexes.Any(i => i.Name == c.Original && i.Columns.Contains(_spec.ColumnNumber))))
        {
            steps.Add(new DdlStep(
                $"Drop the old column's index {Ident.Quote(copy.Original)} concurrently",
                new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {Ident.Qualify(_spec.Schema, copy.Original)}" },
                LockLevel.ShareUpdateExclusive,
                TableName,
                "CONCURRENTLY does not block reads or writes; the new column's copy of it already serves the new application version")
            {
                Transactional = false,
                LockTimeout = context.ConcurrentLockTimeout,
            });
        }

        steps.Add(new DdlStep(
            $"Refresh the planner statistics of {New}",
            new[] { $"ANALYZE {TableName} ({New})" },
            LockLevel.ShareUpdateExclusive,
            TableName,
            "samples the table; does not block reads or writes"));

        var swap = new List<string>
        {
            $"DROP TRIGGER IF EXISTS {Ident.Quote(_spec.TriggerName)} ON {TableName}",
            $"DROP FUNCTION IF EXISTS {Function}()",
        };
        if (_spec.OldDefault is not null)
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

        swap.Add($"ALTER TABLE {TableName} DROP COLUMN {Old}");
        foreach (var copy in _spec.Copies.Where(c => c.Building != c.Final))
        {
            swap.Add(copy.Kind is "Index" or "Unique"
                ? $"ALTER INDEX {Ident.Qualify(_spec.Schema, copy.Building)} RENAME TO {Ident.Quote(copy.Final)}"
                : $"ALTER TABLE {TableName} RENAME CONSTRAINT {Ident.Quote(copy.Building)} TO {Ident.Quote(copy.Final)}");
        }

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
        var statements = new List<string>
        {
            $"DROP TRIGGER IF EXISTS {Ident.Quote(_spec.TriggerName)} ON {TableName}",
            $"DROP FUNCTION IF EXISTS {Function}()",
        };
        if (_spec.OldDefault is not null && table.Column(_spec.Column)?.Default is null)
        {
            statements.Add($"ALTER TABLE {TableName} ALTER COLUMN {Old} SET DEFAULT {_spec.OldDefault}");
        }

        if (table.Column(_spec.NewName) is not null)
        {
            // Its indexes, constraints (NOT VALID or not) and an INVALID index left by a failed build go with it.
            statements.Add($"ALTER TABLE {TableName} DROP COLUMN {New}");
        }

        var steps = new List<DdlStep>
        {
            new($"Drop the sync trigger and the new column {New}", statements, LockLevel.AccessExclusive, TableName, "catalog-only changes; DROP COLUMN does not rewrite the table"),
        };

        // A contract that stopped half-way may have dropped the old column's plain indexes already,
        // or left one INVALID (DROP INDEX CONCURRENTLY marks it so first): build those again.
        foreach (var copy in _spec.Copies.Where(c => c.OriginalDefinition is not null && !table.Indexes.Any(i => i.Name == c.Original && i.IsValid)))
        {
            if (table.Indexes.Any(i => i.Name == copy.Original))
            {
                steps.Add(new DdlStep($"Drop the INVALID index {Ident.Quote(copy.Original)} an interrupted contract left", new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {Ident.Qualify(_spec.Schema, copy.Original)}" }, LockLevel.ShareUpdateExclusive, TableName, "CONCURRENTLY does not block reads or writes; the index serves no query while INVALID")
                {
                    Transactional = false,
                    LockTimeout = context.ConcurrentLockTimeout,
                });
            }

            steps.Add(new DdlStep($"Build the old column's index {Ident.Quote(copy.Original)} again, concurrently", new[] { copy.OriginalDefinition! }, LockLevel.ShareUpdateExclusive, TableName, "CONCURRENTLY builds without blocking writes; a failed build's INVALID index is dropped")
            {
                Transactional = false,
                LockTimeout = context.ConcurrentLockTimeout,
                CleanupOnFailure = new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {Ident.Qualify(_spec.Schema, copy.Original)}" },
            });
        }

        return new PhaseDesign(TableName, $"Undo the rename of {TableName}.{Old} to {New}", steps);
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration) => new Dictionary<string, string>
    {
        ["OldColumn"] = Old,
        ["NewColumn"] = New,
        ["SyncTrigger"] = Ident.Quote(_spec.TriggerName),
        ["SyncFunction"] = Function,
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

    private IReadOnlyList<CopiedObject> PlanCopies(TableInfo table, ColumnInfo column)
    {
        var copies = new List<CopiedObject>();
        foreach (var index in table.Indexes.Where(i => i.Columns.Contains(column.Number) && !i.IsPrimary))
        {
            var backing = table.Constraints.FirstOrDefault(c => c.Name == index.ConstraintName && c.Type == ConstraintType.Unique);
            var (building, final) = Names(index.Name);
            copies.Add(new CopiedObject(backing is null ? "Index" : "Unique", index.Name, building, final, RewriteIndex(table, index, building))
            {
                OriginalDefinition = backing is null ? Concurrently(index.Definition) : null,
            });
        }

        foreach (var constraint in table.Constraints.Where(c => c.Columns.Contains(column.Number) && c.Type is ConstraintType.Check or ConstraintType.ForeignKey))
        {
            var (building, final) = Names(constraint.Name);
            copies.Add(new CopiedObject(constraint.Type == ConstraintType.Check ? "Check" : "ForeignKey", constraint.Name, building, final, RewriteConstraint(constraint)));
        }

        return copies;
    }

    /// <summary>
    /// The name an object gets on the new column: the old column's name replaced by the new one
    /// when it appears in it (orders_address_idx becomes orders_billing_address_idx at once);
    /// otherwise a temporary name that takes over the original once the old object is dropped.
    /// </summary>
    private (string Building, string Final) Names(string original)
    {
        var replaced = original.Replace(_spec.Column, _spec.NewName, StringComparison.Ordinal);
        if (replaced != original && System.Text.Encoding.UTF8.GetByteCount(replaced) <= Ident.MaxBytes)
        {
            return (replaced, replaced);
        }

        return (Ident.Derive("", original, "zdt"), original);
    }

    private string RewriteIndex(TableInfo table, IndexInfo index, string newName)
    {
        // pg_get_indexdef: CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING method (...) ...
        var usingAt = ColumnReferenceRewriter.IndexOfKeyword(index.Definition, "USING");
        var tail = ColumnReferenceRewriter.Rename(index.Definition[usingAt..], _spec.Column, _spec.NewName);
        return $"CREATE {(index.IsUnique ? "UNIQUE " : "")}INDEX CONCURRENTLY {Ident.Quote(newName)} ON {table.QualifiedName} {tail}";
    }

    /// <summary>pg_get_indexdef's CREATE [UNIQUE] INDEX made CONCURRENTLY.</summary>
    private static string Concurrently(string definition)
    {
        var at = definition.IndexOf("INDEX ", StringComparison.Ordinal) + "INDEX ".Length;
        return definition[..at] + "CONCURRENTLY " + definition[at..];
    }

    private string RewriteConstraint(ConstraintInfo constraint)
    {
        // Only the part before REFERENCES names this table's columns.
        var references = ColumnReferenceRewriter.IndexOfKeyword(constraint.Definition, "REFERENCES");
        var head = references < 0 ? constraint.Definition : constraint.Definition[..references];
        var tail = references < 0 ? "" : constraint.Definition[references..];
        var definition = ColumnReferenceRewriter.Rename(head, _spec.Column, _spec.NewName) + tail;
        return definition.EndsWith(" NOT VALID", StringComparison.Ordinal) ? definition : definition + " NOT VALID";
    }

    private async Task RequireCopyNamesFreeAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        foreach (var copy in _spec.Copies)
        {
            var taken = copy.Kind is "Index" or "Unique"
                ? await context.Catalog.DescribeNameUseAsync(_spec.Schema, copy.Building, ct).ConfigureAwait(false)
                : table.Constraints.Any(c => c.Name == copy.Building) ? "constraint" : null;
            if (taken is not null)
            {
                throw new ZdtException(
                    "NameTaken",
                    ErrorKind.ResourceExists,
                    $"The copy of {copy.Kind} {Ident.Quote(copy.Original)} on the new column would be named {Ident.Quote(copy.Building)}, which a {taken} already uses. Rename that object first; nothing was changed.");
            }
        }
    }

    private IReadOnlyList<DdlStep> ExpandSteps(PlanningContext context, TableInfo table, ColumnInfo column)
    {
        var first = new List<string>
        {
            $"ALTER TABLE {TableName} ADD COLUMN {New} {column.Type}{(column.Collation is null ? "" : " COLLATE " + column.Collation)}",
        };
        if (column.Comment is not null)
        {
            first.Add($"COMMENT ON COLUMN {TableName}.{New} IS {Ident.Literal(column.Comment)}");
        }

        if (column.StatisticsTarget >= 0)
        {
            first.Add($"ALTER TABLE {TableName} ALTER COLUMN {New} SET STATISTICS {column.StatisticsTarget}");
        }

        if (_spec.OldDefault is not null)
        {
            // The trigger applies it from now on: with the default on the old column, an INSERT that
            // wrote only the new column would look as if it had written the old one too.
            first.Add($"ALTER TABLE {TableName} ALTER COLUMN {Old} DROP DEFAULT");
        }

        first.Add(SyncFunctionSql());
        first.Add($"CREATE TRIGGER {Ident.Quote(_spec.TriggerName)} BEFORE INSERT OR UPDATE ON {TableName} FOR EACH ROW EXECUTE FUNCTION {Function}()");
        first.AddRange(table.Grants.Where(g => g.Column == _spec.Column).Select(g => CompatibilityView.GrantSql(g with { Column = _spec.NewName }, TableName)));
        first.AddRange(_spec.Copies.Where(c => c.Kind is "Check" or "ForeignKey").Select(c => $"ALTER TABLE {TableName} ADD CONSTRAINT {Ident.Quote(c.Building)} {c.Definition}"));

        var steps = new List<DdlStep>
        {
            new(
                $"Add {New}, the sync trigger{(_spec.Copies.Any(c => c.Kind is "Check" or "ForeignKey") ? " and NOT VALID constraints" : "")}",
                first,
                LockLevel.AccessExclusive,
                TableName,
                "adding a nullable column without default, a trigger and NOT VALID constraints are catalog changes: no scan, no rewrite"),
        };

        foreach (var copy in _spec.Copies.Where(c => c.Kind is "Index" or "Unique"))
        {
            var index = Ident.Qualify(_spec.Schema, copy.Building);
            steps.Add(new DdlStep($"Build {copy.Kind.ToLowerInvariant()} index {Ident.Quote(copy.Building)} on {New} concurrently", new[] { copy.Definition }, LockLevel.ShareUpdateExclusive, TableName, "CONCURRENTLY builds without blocking writes; a failed build's INVALID index is dropped")
            {
                Transactional = false,
                LockTimeout = context.ConcurrentLockTimeout,
                CleanupOnFailure = new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {index}" },
            });
            if (copy.Kind == "Unique")
            {
                var original = table.Constraints.First(c => c.Name == copy.Original);
                var deferrable = original.Definition.Contains("DEFERRABLE", StringComparison.Ordinal) && !original.Definition.Contains("NOT DEFERRABLE", StringComparison.Ordinal)
                    ? (original.Definition.Contains("INITIALLY DEFERRED", StringComparison.Ordinal) ? " DEFERRABLE INITIALLY DEFERRED" : " DEFERRABLE")
                    : "";
                steps.Add(new DdlStep(
                    $"Attach unique constraint {Ident.Quote(copy.Building)} to its index",
                    new[] { $"ALTER TABLE {TableName} ADD CONSTRAINT {Ident.Quote(copy.Building)} UNIQUE USING INDEX {Ident.Quote(copy.Building)}{deferrable}" },
                    LockLevel.AccessExclusive,
                    TableName,
                    "the index already exists and is valid: catalog change only"));
            }
        }

        return steps;
    }

    private string SyncFunctionSql()
    {
        var table = Ident.Literal(_spec.Table);
        var applyDefault = _spec.OldDefault is null ? "" : $"""
                    NEW.{Old} := {_spec.OldDefault};
            """;
        var body = $$"""
            CREATE FUNCTION {{Function}}() RETURNS trigger LANGUAGE plpgsql AS $zdt_sync$
            -- ZeroDowntime: keeps {{Old}} and {{New}} of {{TableName}} equal while both exist.
            BEGIN
              IF TG_OP = 'INSERT' THEN
                IF NEW.{{Old}} IS NULL AND NEW.{{New}} IS NULL THEN
            {{applyDefault}}        NEW.{{New}} := NEW.{{Old}};
                ELSIF NEW.{{New}} IS NULL THEN
                    NEW.{{New}} := NEW.{{Old}};
                ELSIF NEW.{{Old}} IS NULL THEN
                    NEW.{{Old}} := NEW.{{New}};
                ELSIF NEW.{{Old}} IS DISTINCT FROM NEW.{{New}} THEN
                    RAISE EXCEPTION 'ZeroDowntime: this INSERT sets both % and % of % to different values; while the rename is in progress write only one of them', {{Ident.Literal(_spec.Column)}}, {{Ident.Literal(_spec.NewName)}}, {{table}};
                END IF;
              ELSIF NEW.{{New}} IS DISTINCT FROM OLD.{{New}} AND NEW.{{Old}} IS NOT DISTINCT FROM OLD.{{Old}} THEN
                NEW.{{Old}} := NEW.{{New}};
              ELSIF NEW.{{Old}} IS DISTINCT FROM OLD.{{Old}} AND NEW.{{New}} IS NOT DISTINCT FROM OLD.{{New}} THEN
                NEW.{{New}} := NEW.{{Old}};
              ELSIF NEW.{{Old}} IS DISTINCT FROM NEW.{{New}} THEN
                IF NEW.{{Old}} IS DISTINCT FROM OLD.{{Old}} THEN
                    RAISE EXCEPTION 'ZeroDowntime: this UPDATE sets both % and % of % to different values; while the rename is in progress write only one of them', {{Ident.Literal(_spec.Column)}}, {{Ident.Literal(_spec.NewName)}}, {{table}};
                END IF;
                -- Neither changed and they differ: a row not backfilled yet; sync it on the way.
                NEW.{{New}} := NEW.{{Old}};
              END IF;
              RETURN NEW;
            END
            $zdt_sync$
            """;
        if (body.Split("$zdt_sync$").Length != 3)
        {
            throw new ZdtException("InvalidIdentifier", ErrorKind.InvalidArgument, "A name or the column default contains the text $zdt_sync$, which the sync trigger's body cannot hold.");
        }

        return body;
    }

    private DdlStep Validate(string constraint, string what)
        => new(
            $"Validate {Ident.Quote(constraint)}",
            new[] { $"ALTER TABLE {TableName} VALIDATE CONSTRAINT {Ident.Quote(constraint)}" },
            LockLevel.ShareUpdateExclusive,
            TableName,
            $"{what} under SHARE UPDATE EXCLUSIVE, which does not block reads or writes");

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
