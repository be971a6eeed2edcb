using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Add a column, with a default and NOT NULL if asked, without rewriting or scanning the table
/// under ACCESS EXCLUSIVE. The server decides which way (see <see cref="ProbeAsync"/>):
/// Instant: PostgreSQL 11+ stores a non-volatile default in the catalog and fills no row, so one
/// short ALTER TABLE ... ADD COLUMN ... DEFAULT ... [NOT NULL] is the whole change.
/// Backfill: a volatile default (gen_random_uuid(), clock_timestamp(), ...) or a server before 11
/// would rewrite every row under ACCESS EXCLUSIVE; instead the column is added nullable with its
/// default set at once (new rows get it), the existing rows are filled by the batched backfill
/// (SET col = DEFAULT, evaluated per row), and NOT NULL comes at contract through a validated check.
/// Which rows the backfill fills is kept by a <see cref="PendingRowMarker"/>, not read from NULL:
/// a NULL the application wrote after the expand stays NULL, as after a plain ADD COLUMN, and a
/// row it updates before the backfill reaches it is filled by the marker's trigger (so a walk over
/// ctid page ranges cannot miss a row that moved). Contract and undo drop the marker and its triggers.
/// Undo drops the column. The column's type and default are SQL the user wrote: the server parses
/// them first, and the plan uses its canonical spelling (format_type, pg_get_expr).
/// </summary>
internal sealed class AddColumn : MigrationOperation
{
    public const string KindName = "AddColumn";
    public const string InstantStrategy = "Instant";
    public const string BackfillStrategy = "Backfill";

    private readonly Spec _spec;

    public AddColumn(Spec spec)
    {
        _spec = spec;
    }

    /// <summary>
    /// What the ledger stores: the request as given, and what the expand settled on (the canonical
    /// type and default, the strategy) so that later phases need not ask the server again.
    /// </summary>
    public sealed record Spec(string Schema, string Table, string Column, string Type, string? Default, bool NotNull)
    {
        public uint TableOid { get; init; }

        public string? Strategy { get; init; }

        public string? CanonicalType { get; init; }

        public string? CanonicalDefault { get; init; }

        /// <summary>Backfill strategy: the per-row marker of the rows still to fill (null for migrations recorded before it existed).</summary>
        public PendingRowMarker? Marker { get; init; }
    }

    /// <summary>What the server said about the column (from a rolled-back probe).</summary>
    private sealed record ProbeResult(string Type, string? Default, string? QualifiedDefault, bool PlainAddRewrites, bool DefaultRewrites, bool DefaultIsNull);

    public override string? RequestIdentity => MigrationLedger.ToJson(new { _spec.Schema, _spec.Table, _spec.Column, _spec.Type, _spec.Default, _spec.NotNull });

    public override string Kind => KindName;

    public override MigrationPhase ContractFrom => _spec.Strategy == BackfillStrategy ? MigrationPhase.Backfilled : MigrationPhase.Expanded;

    private string TableName => Ident.Qualify(_spec.Schema, _spec.Table);

    private string ColumnName => Ident.Quote(_spec.Column);

    private string CheckName => NotNullSteps.CheckName(_spec.Column);

    /// <summary>BEFORE row triggers (the marker's) on a partitioned table, cloned to every partition, exist from PostgreSQL 13 on.</summary>
    private const int PartitionedMarkerFrom = 130000;

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        Ident.Validate(_spec.Column, "column name");
        SqlTokenizer.RequireFragment(_spec.Type, "column type");
        if (_spec.Default is not null)
        {
            SqlTokenizer.RequireFragment(_spec.Default, "default expression");
        }

        if (_spec.NotNull && _spec.Default is null)
        {
            throw new ZdtException(
                ErrorIds.NotNullNeedsDefault,
                ErrorKind.InvalidArgument,
                $"A new NOT NULL column needs a default: the existing rows of {TableName} would have no value. Give -Default, or add the column nullable, fill it, and then make it NOT NULL with Set-ColumnNotNull. Nothing was changed.");
        }

        var table = await TableResolver.RequireFreeTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: true, ct).ConfigureAwait(false);
        if (table.Column(_spec.Column) is not null)
        {
            throw new ZdtException(ErrorIds.ColumnExists, ErrorKind.ResourceExists, $"{table.QualifiedName} already has a column {ColumnName}. Nothing was changed.")
            { TargetObject = _spec.Column };
        }

        var probe = await ProbeAsync(context, ct).ConfigureAwait(false);
        if (probe.PlainAddRewrites)
        {
            throw new ZdtException(
                ErrorIds.RewriteUnavoidable,
                ErrorKind.InvalidOperation,
                $"Adding a column of type {probe.Type} makes PostgreSQL rewrite the whole of {table.QualifiedName} under ACCESS EXCLUSIVE even without a default (a domain with constraints is checked row by row). Use its base type and add the domain's check as a constraint (Add-CheckConstraint) instead. Nothing was changed.");
        }

        var instant = probe.Default is null || !probe.DefaultRewrites;
        if (_spec.NotNull && probe.DefaultIsNull)
        {
            throw new ZdtException(
                ErrorIds.DefaultIsNull,
                ErrorKind.InvalidArgument,
                $"The default ({_spec.Default}) evaluates to NULL, so the existing rows of {table.QualifiedName} could not satisfy NOT NULL. Nothing was changed.");
        }

        if (!instant && table.Kind == RelationKind.PartitionedTable && context.ServerVersion < PartitionedMarkerFrom)
        {
            throw new ZdtException(
                ErrorIds.NotATable,
                ErrorKind.InvalidArgument,
                $"{table.QualifiedName} is a partitioned table, and this default ({probe.Default}) needs a backfill whose marker triggers are BEFORE UPDATE row triggers on the partitioned table, which PostgreSQL allows from 13 on. Add the column with a non-volatile default, or backfill by hand. Nothing was changed.");
        }

        if (!instant)
        {
            // Found out now rather than after the column was added: the backfill could not walk the
            // table (on a partitioned table: each leaf partition, by its own key).
            await Partitions.PartitionLeaves.RequireWalkableAsync(context, table, $"This default ({probe.Default}) needs a backfill", ct).ConfigureAwait(false);
        }

        var type = probe.Type;
        PendingRowMarker? marker = null;
        var steps = new List<DdlStep>();
        string summary;
        if (instant)
        {
            var defaultClause = probe.Default is null ? "" : $" DEFAULT {probe.Default}";
            var notNull = _spec.NotNull ? " NOT NULL" : "";
            steps.Add(new DdlStep(
                $"Add column {ColumnName} {type}{defaultClause}{notNull}",
                new[] { $"ALTER TABLE {table.QualifiedName} ADD COLUMN {ColumnName} {type}{defaultClause}{notNull}" },
                LockLevel.AccessExclusive,
                table.QualifiedName,
                probe.Default is null
                    ? "a nullable column without a default is a catalog change: no row is touched, the lock is held for milliseconds"
                    : "the server stores this non-volatile default in the catalog (PostgreSQL 11+) and fills no row, so the lock is held for milliseconds whatever the table's size"));
            summary = $"Add column {ColumnName} {type}{defaultClause}{notNull} to {table.QualifiedName} (instant: no row is rewritten)";
        }
        else
        {
            marker = PendingRowMarker.For(_spec.Schema, _spec.Table, table.Oid, _spec.Column, context.Ledger.SchemaName, probe.QualifiedDefault!);
            await marker.RequireNamesFreeAsync(context.Connection, table, ct).ConfigureAwait(false);
            var partitioned = table.Kind == RelationKind.PartitionedTable;
            var columns = new[]
            {
                $"ALTER TABLE {table.QualifiedName} ADD COLUMN {ColumnName} {type}",
                $"ALTER TABLE {table.QualifiedName} ALTER COLUMN {ColumnName} SET DEFAULT {probe.Default}",
            }.Concat(partitioned ? marker.ColumnStatements() : marker.CreateStatements(context.ServerVersion)).ToList();
            steps.Add(new DdlStep(
                $"Add column {ColumnName} {type} (nullable), set its default for new rows, and mark the existing rows as still to fill",
                columns,
                LockLevel.AccessExclusive,
                table.QualifiedName,
                $"with this default in the ADD COLUMN the server would rewrite every row under ACCESS EXCLUSIVE ({RewriteReason(context)}); added nullable and given the default separately, both are catalog changes held for milliseconds, and the existing rows are filled by Invoke-Backfill. The marker column {Ident.Quote(marker.MarkerColumn)} (NULL in the existing rows, true in new ones: added without a default, so no rewrite either) tells the backfill which rows to fill, so NULLs the application writes are kept; its triggers clear it when the application writes {ColumnName} and fill a row the application updates first. It is visible to SELECT * until Complete-Contract or Undo-Migration drops it"));
            if (partitioned)
            {
                // Cloning the triggers to every partition costs as much as the columns: a second,
                // weaker transaction. A write between the two meets no trigger: an inserted row
                // takes the default and is marked filled, an updated existing row stays marked
                // pending (still NULL) and is filled by the backfill, as if written before the
                // expand. Only a write of the new column itself, which no application can make
                // before the expand has returned, would not be kept.
                steps.Add(Partitions.PartitionedTriggerStep.Create("the marker's triggers", table.QualifiedName, marker.TriggerStatements(context.ServerVersion)));
            }

            summary = $"Add column {ColumnName} {type} DEFAULT {probe.Default}{(_spec.NotNull ? " NOT NULL" : "")} to {table.QualifiedName} (backfill: the existing rows get the default in batches, {(_spec.NotNull ? "NOT NULL is enforced at contract" : "then contract")})";
        }

        var spec = _spec with
        {
            TableOid = table.Oid,
            Strategy = instant ? InstantStrategy : BackfillStrategy,
            CanonicalType = type,
            CanonicalDefault = probe.Default,
            Marker = marker,
        };
        return new ExpandDesign(
            table,
            summary,
            steps,
            Column: _spec.Column,
            NewName: null,
            Strategy: spec.Strategy,
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: instant ? null : table.EstimatedRows);
    }

    public override BackfillDesign? PlanBackfill(TableInfo table, LedgerRow migration)
    {
        if (_spec.Strategy != BackfillStrategy)
        {
            return null;
        }

        if (_spec.Marker is not { } marker)
        {
            // Recorded before the marker existed: NULL is all there is to go by.
            return new BackfillDesign(_ => $"{ColumnName} = DEFAULT", alias => $"{alias}.{ColumnName} IS NULL", $"{ColumnName} = DEFAULT ({_spec.CanonicalDefault}) where it is NULL");
        }

        // DEFAULT in an UPDATE evaluates the column's default for each row: a volatile one gives each
        // row its own value. A NOT NULL column also gets the default where the application wrote NULL
        // (the plain ADD COLUMN ... NOT NULL would have refused that write; the contract needs a value).
        // A partition is filled with the partitioned table's default itself, as the marker's trigger
        // fills it: a table attached as a partition keeps its own defaults (none, typically), while
        // the rows it brings with its marker NULL are rows of the table to give the new column's value.
        var value = table.IsPartition ? $"({marker.FillExpression})" : "DEFAULT";
        return new BackfillDesign(
            _ => $"{ColumnName} = {value}, {marker.MarkFilled()}",
            alias => _spec.NotNull ? $"({marker.PendingFilter(alias)} OR {alias}.{ColumnName} IS NULL)" : marker.PendingFilter(alias),
            $"{ColumnName} = DEFAULT ({_spec.CanonicalDefault}) in the rows that existed before the expand and were not written since ({Ident.Quote(marker.MarkerColumn)} IS NULL){(_spec.NotNull ? " or are NULL" : "")}",
            ConfirmWithCleanPass: true);
    }

    /// <summary>
    /// What the parity check counts for an addition by backfill: rows that existed before the expand
    /// and have not been given their value, as a predicate over the relation the rows are read
    /// under (the table, or each leaf partition). Null when there is no marker to count by.
    /// </summary>
    public Func<string, string>? UnfilledRowsFilter(TableInfo table)
        => _spec.Marker is { } marker && table.Column(marker.MarkerColumn) is not null ? marker.PendingFilter : null;

    public override bool CanUndoFrom(MigrationPhase phase)
        => base.CanUndoFrom(phase) || phase == MigrationPhase.Contracting;

    /// <summary>
    /// Refuses while any row that existed before the expand has not been given its value (counted
    /// by its marker), and before the NOT NULL steps while rows are still NULL: the validation would
    /// fail half way.
    /// </summary>
    public override async Task BeforeContractAsync(PlanningContext context, LedgerRow migration, MigrationEngine engine, CancellationToken ct)
    {
        if (_spec.Strategy != BackfillStrategy)
        {
            return;
        }

        var (table, column) = await RequireColumnAsync(context, migration, ct).ConfigureAwait(false);
        if (UnfilledRowsFilter(table) is not null)
        {
            var unfilled = await engine.CheckParityAsync(migration.Id, ct).ConfigureAwait(false);
            if (!unfilled.InParity)
            {
                throw new ZdtException(
                    ErrorIds.RowsPending,
                    ErrorKind.InvalidData,
                    $"{unfilled.Mismatches:N0} row(s) of {table.QualifiedName} existed before {ColumnName} was added and have not been given its value yet (a write that bypassed triggers, such as logical replication's apply, moved them past the backfill). Run Invoke-Backfill on migration {migration.Id} again, then Complete-Contract. Nothing was changed.")
                { TargetObject = unfilled.Mismatches };
            }
        }

        if (!_spec.NotNull)
        {
            return;
        }

        if (column.NotNull)
        {
            return;
        }

        var nulls = await NotNullSteps.CountNullsAsync(context, table, column, ct).ConfigureAwait(false);
        if (nulls > 0)
        {
            throw NotNullSteps.NullsPresent(table, column, nulls, $"Run Invoke-Backfill on migration {migration.Id} again (rows written with an explicit NULL since the expand are filled too), then Complete-Contract.");
        }
    }

    public override async Task<PhaseDesign> PlanContractAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        if (_spec.Strategy != BackfillStrategy)
        {
            // Instant: the column is final since the expand.
            return new PhaseDesign(TableName, $"Complete the addition of column {ColumnName} to {TableName} (no DDL left)", Array.Empty<DdlStep>());
        }

        var (table, column) = await RequireColumnAsync(context, migration, ct).ConfigureAwait(false);
        var steps = new List<DdlStep>();
        var summary = $"Complete the addition of column {ColumnName} to {table.QualifiedName}";
        DdlStep? last = null;
        if (_spec.NotNull)
        {
            if (!column.NotNull)
            {
                steps.AddRange(await NotNullSteps.AddAndValidateAsync(context, table, column, CheckName, ct).ConfigureAwait(false));
            }

            last = NotNullSteps.SetNotNullAndDropCheck(table, column, CheckName, context.ServerVersion);
            summary = $"Make the new column {ColumnName} of {table.QualifiedName} NOT NULL without a locked scan{NotNullSteps.KeptCheckNote(context.ServerVersion)}";
        }

        if (_spec.Marker is { } marker && marker.IsPresentOn(table))
        {
            // Last (no row needs it any more: the count before the contract said so), and in the
            // same short ACCESS EXCLUSIVE transaction as SET NOT NULL when there is one.
            const string result = "; afterwards the table is what the plain ADD COLUMN would have made";
            last = last is null
                ? DropMarkerStep(table, marker.DropStatements(), result)
                : new DdlStep(last.Title + ", and drop the backfill's marker, triggers and function", last.Statements.Concat(marker.DropStatements()).ToList(), last.Lock, last.LockTarget, last.Why + result);
            summary += ", and drop the backfill's marker and triggers";
        }

        if (last is not null)
        {
            steps.Add(last);
        }

        return new PhaseDesign(table.QualifiedName, steps.Count == 0 ? summary + " (no DDL left)" : summary, steps);
    }

    public override async Task<PhaseDesign> PlanUndoAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(_spec.TableOid, ct).ConfigureAwait(false)
            ?? throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, $"The table of migration {migration.Id} ({TableName}) no longer exists; there is nothing to undo.");
        var column = table.Column(_spec.Column);
        var markerStatements = _spec.Marker is { } marker && marker.IsPresentOn(table) ? marker.DropStatements() : Array.Empty<string>();
        if (column is null && markerStatements.Count == 0)
        {
            return new PhaseDesign(table.QualifiedName, $"Undo the addition of column {ColumnName} to {table.QualifiedName} (it is already gone)", Array.Empty<DdlStep>());
        }

        if (column is null)
        {
            return new PhaseDesign(table.QualifiedName, $"Undo the addition of column {ColumnName} to {table.QualifiedName}: drop what is left of the backfill's marker", new[] { DropMarkerStep(table, markerStatements, "") });
        }

        // Indexes and constraints on the column go with it; say so, since the user may have added some since the expand.
        var goesWith = table.Indexes.Where(i => i.Columns.Contains(column.Number)).Select(i => "index " + Ident.Quote(i.Name))
            .Concat(table.Constraints.Where(c => c.Columns.Contains(column.Number)).Select(c => "constraint " + Ident.Quote(c.Name)))
            .ToList();
        var also = goesWith.Count == 0 ? "" : $"; this also drops {string.Join(", ", goesWith)}";
        var step = new DdlStep(
            markerStatements.Count == 0 ? $"Drop the new column {ColumnName}" : $"Drop the new column {ColumnName} and the backfill's marker, triggers and function",
            markerStatements.Append($"ALTER TABLE {table.QualifiedName} DROP COLUMN {ColumnName}").ToList(),
            LockLevel.AccessExclusive,
            table.QualifiedName,
            "dropping a column only marks it dropped in the catalog (no rewrite), held for milliseconds" + also);
        return new PhaseDesign(table.QualifiedName, $"Undo the addition of column {ColumnName} to {table.QualifiedName}: drop it and the values written to it", new[] { step });
    }

    private static DdlStep DropMarkerStep(TableInfo table, IReadOnlyList<string> statements, string also)
        => new(
            "Drop the backfill's marker, triggers and function",
            statements,
            LockLevel.AccessExclusive,
            table.QualifiedName,
            "dropping triggers, a function and a column are catalog changes (the column is only marked dropped, no rewrite), held for milliseconds" + also);

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration)
    {
        var details = new Dictionary<string, string>
        {
            ["Table"] = TableName,
            ["Column"] = ColumnName,
            ["Type"] = _spec.CanonicalType ?? _spec.Type,
            ["NotNull"] = _spec.NotNull ? "True" : "False",
        };
        if ((_spec.CanonicalDefault ?? _spec.Default) is { } value)
        {
            details["Default"] = value;
        }

        if (_spec.Marker is { } marker && !migration.Phase.IsFinal())
        {
            details["PendingMarker"] = Ident.Quote(marker.MarkerColumn);
        }

        return details;
    }

    /// <summary>
    /// Asks the server how it would add this column: in a transaction that is rolled back, add it
    /// to an empty temporary table, first without and then with the default, and see whether the
    /// server rewrote the table for either (<see cref="ServerProbe.AddColumnRewritesAsync"/>). This
    /// is the server's own decision, so it also covers what a volatility check alone would miss. The
    /// default is evaluated at most once, for the non-volatile case (an empty table has no rows to
    /// fill), so a nextval() default does not even use up a sequence value.
    /// </summary>
    private Task<ProbeResult> ProbeAsync(PlanningContext context, CancellationToken ct)
        => ServerProbe.RunAsync(
            context,
            _spec.Default is null ? $"column type ({_spec.Type})" : $"column type ({_spec.Type}) or default ({_spec.Default})",
            async probe =>
            {
                await probe.ExecuteAsync($"CREATE TEMP TABLE {ServerProbe.Table} ()").ConfigureAwait(false);

                // The user's text goes on lines of its own (and the default in parentheses), so it can
                // only ever be a type and an expression; anything else it smuggled shows up below.
                var plainRewrites = await probe.AddColumnRewritesAsync($"c\n{_spec.Type}\n").ConfigureAwait(false);
                var defaultRewrites = _spec.Default is not null
                    && await probe.AddColumnRewritesAsync($"d\n{_spec.Type}\nDEFAULT (\n{_spec.Default}\n)").ConfigureAwait(false);

                var hasMissing = context.ServerVersion >= 110000 ? "a.atthasmissing" : "false";
                var row = await probe.RowAsync($"""
                    SELECT format_type(a.atttypid, a.atttypmod),
                           CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
                                THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END,
                           pg_get_expr(d.adbin, d.adrelid), {hasMissing},
                           (SELECT count(*) FROM pg_attribute x WHERE x.attrelid = a.attrelid AND x.attnum > 0 AND (x.attnotnull OR x.attidentity <> '' OR x.attgenerated <> ''))
                             + (SELECT count(*) FROM pg_constraint WHERE conrelid = a.attrelid)
                             + (SELECT count(*) FROM pg_attribute x WHERE x.attrelid = a.attrelid AND x.attnum > 0 AND NOT x.attisdropped) - {(_spec.Default is null ? 1 : 2)}
                    FROM pg_attribute a
                    JOIN pg_type t ON t.oid = a.atttypid
                    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                    LEFT JOIN pg_collation co ON co.oid = a.attcollation
                    LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
                    WHERE a.attrelid = '{ServerProbe.Table}'::regclass AND a.attname = '{(_spec.Default is null ? "c" : "d")}'
                    """).ConfigureAwait(false);
                // Anything beyond one column of that type with (only) the given default was smuggled in through the text.
                var extras = (long)row[4]!;
                if (extras != 0 || (_spec.Default is null && row[2] is not null))
                {
                    throw new ZdtException(
                        ErrorIds.InvalidSql,
                        ErrorKind.InvalidArgument,
                        $"The column type ({_spec.Type}){(_spec.Default is null ? "" : $" or the default ({_spec.Default})")} adds more than a type and a default (a constraint, NOT NULL, identity, generation or another column). Give only the type in -Type and the expression in -Default, and use -NotNull for NOT NULL. Nothing was changed.");
                }

                var type = (string)row[0]! + (row[1] is string collation ? " COLLATE " + collation : "");
                var canonicalDefault = (string?)row[2];
                var defaultIsNull = _spec.Default is not null && !defaultRewrites && !(bool)row[3]!;

                // The same default printed with only pg_catalog on the search_path, so every other
                // object in it is schema-qualified: the backfill's trigger evaluates it under whatever
                // search_path the writing session has.
                string? qualifiedDefault = null;
                if (canonicalDefault is not null)
                {
                    await probe.ExecuteAsync("SET LOCAL search_path = pg_catalog").ConfigureAwait(false);
                    qualifiedDefault = (string?)(await probe.RowAsync($"SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = '{ServerProbe.Table}'::regclass AND a.attname = 'd'").ConfigureAwait(false))[0];
                }

                return new ProbeResult(type, canonicalDefault, qualifiedDefault, plainRewrites, defaultRewrites, defaultIsNull);
            },
            ct);

    private static string RewriteReason(PlanningContext context)
        => context.ServerVersion < 110000 ? "before PostgreSQL 11 every default is written into every row" : "the default is volatile, so each row needs its own value";

    private async Task<(TableInfo Table, ColumnInfo Column)> RequireColumnAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(_spec.TableOid, ct).ConfigureAwait(false)
            ?? throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, $"The table of migration {migration.Id} ({TableName}) no longer exists.");
        var column = table.Column(_spec.Column)
            ?? throw new ZdtException(ErrorIds.ColumnGone, ErrorKind.ObjectNotFound, $"The column {ColumnName} that migration {migration.Id} added to {table.QualifiedName} no longer exists. Nothing was changed.");
        return (table, column);
    }
}
