using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Rename a table behind an updatable view that keeps the old name working.
/// Expand: in one short transaction, rename the table and create a view under the old name that
/// lists every column explicitly (SELECT * would freeze the column list just the same, but an
/// explicit list says so), is security_invoker (so the caller's rights and the table's row-level
/// security apply, PostgreSQL 15+), and carries the table's grants. A simple view like this is
/// automatically updatable: INSERT/UPDATE/DELETE/RETURNING/ON CONFLICT, defaults, sequences,
/// constraints and triggers all act on the table. No backfill. Contract: drop the view.
/// Undo: drop the view and rename the table back, in one transaction.
/// </summary>
internal sealed class TableRename : MigrationOperation
{
    public const string KindName = "RenameTable";

    private const string ViewComment = "ZeroDowntime compatibility view: the old name of {0} until its migration is completed.";

    private readonly Spec _spec;

    public TableRename(Spec spec)
    {
        _spec = spec;
    }

    /// <summary>What the ledger stores about a table rename.</summary>
    public sealed record Spec(string Schema, string Table, string NewName, uint TableOid = 0);

    public override string? RequestIdentity => MigrationLedger.ToJson(new { _spec.Schema, _spec.Table, _spec.NewName });

    public override string Kind => KindName;

    public override MigrationPhase ContractFrom => MigrationPhase.Expanded;

    private string OldQualified => Ident.Qualify(_spec.Schema, _spec.Table);

    private string NewQualified => Ident.Qualify(_spec.Schema, _spec.NewName);

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        Ident.Validate(_spec.NewName, "new table name");
        if (_spec.NewName == _spec.Table)
        {
            throw new ZdtException(ErrorIds.SameName, ErrorKind.InvalidArgument, $"The new name is the same as the old one ({OldQualified}); nothing to do.");
        }

        var table = await TableResolver.RequireFreeTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: true, ct).ConfigureAwait(false);
        await TableResolver.RequireNameFreeAsync(context, _spec.Schema, _spec.NewName, ct).ConfigureAwait(false);
        var currentUser = await CompatibilityView.CurrentUserAsync(context, ct).ConfigureAwait(false);

        var statements = new List<string>
        {
            $"ALTER TABLE {OldQualified} RENAME TO {Ident.Quote(_spec.NewName)}",
            CreateViewSql(context, table),
            $"COMMENT ON VIEW {OldQualified} IS {Ident.Literal(string.Format(System.Globalization.CultureInfo.InvariantCulture, ViewComment, NewQualified))}",
        };

        // The view is created by whoever runs the migration; give it to the table's owner so that
        // the people who manage the table's grants manage the view's too.
        if (table.Owner != currentUser)
        {
            statements.Add($"ALTER VIEW {OldQualified} OWNER TO {Ident.Quote(table.Owner)}");
        }

        statements.AddRange(table.Grants.Select(g => CompatibilityView.GrantSql(g, OldQualified)));

        var why = "renaming is a catalog change and creating a view reads no rows, so the lock is held for milliseconds whatever the table's size"
            + (context.SupportsSecurityInvokerViews ? "" : "; before PostgreSQL 15 the view checks permissions as its owner, not the caller (no security_invoker)");
        var step = new DdlStep($"Rename {OldQualified} to {Ident.Quote(_spec.NewName)} and create the compatibility view", statements, LockLevel.AccessExclusive, OldQualified, why);
        var spec = _spec with { TableOid = table.Oid };
        return new ExpandDesign(
            table,
            $"Rename table {OldQualified} to {Ident.Quote(_spec.NewName)}, keeping {Ident.Quote(_spec.Table)} working as an updatable view",
            new[] { step },
            Column: null,
            NewName: _spec.NewName,
            Strategy: "View",
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: null);
    }

    public override async Task<PhaseDesign> PlanContractAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await RequireRenamedTableAsync(context, migration, ct).ConfigureAwait(false);
        var view = await OurViewAsync(context, table, ct).ConfigureAwait(false);
        var steps = new List<DdlStep>();
        if (view is not null)
        {
            RequireNoDependents(view, "drop");
            steps.Add(new DdlStep(
                $"Drop the compatibility view {OldQualified}",
                new[] { $"DROP VIEW {OldQualified}" },
                LockLevel.AccessExclusive,
                OldQualified,
                "dropping a view is a catalog change; only queries that still use the old name wait for it"));
        }

        return new PhaseDesign(NewQualified, $"Drop the compatibility view {OldQualified} of table {NewQualified} (clients must use the new name from now on)", steps);
    }

    public override async Task<PhaseDesign> PlanUndoAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(_spec.TableOid, ct).ConfigureAwait(false)
            ?? throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, $"The table of migration {migration.Id} (first {OldQualified}) no longer exists; there is nothing to undo.");
        var statements = new List<string>();
        if (table.Name == _spec.NewName)
        {
            var view = await OurViewAsync(context, table, ct).ConfigureAwait(false);
            if (view is not null)
            {
                RequireNoDependents(view, "undo");
                statements.Add($"DROP VIEW {OldQualified}");
            }
            else
            {
                await TableResolver.RequireNameFreeAsync(context, _spec.Schema, _spec.Table, ct).ConfigureAwait(false);
            }

            statements.Add($"ALTER TABLE {NewQualified} RENAME TO {Ident.Quote(_spec.Table)}");
        }
        else if (table.Name != _spec.Table)
        {
            throw new ZdtException(
                ErrorIds.TableRenamedElsewhere,
                ErrorKind.InvalidOperation,
                $"The table of migration {migration.Id} is now called {table.QualifiedName}, neither {OldQualified} nor {NewQualified}; it was renamed outside ZeroDowntime. Nothing was changed.");
        }

        var steps = statements.Count == 0
            ? Array.Empty<DdlStep>()
            : new[] { new DdlStep($"Drop the compatibility view and rename {NewQualified} back to {Ident.Quote(_spec.Table)}", statements, LockLevel.AccessExclusive, table.QualifiedName, "catalog-only changes in one short transaction") };
        return new PhaseDesign(OldQualified, $"Undo the rename of {OldQualified} to {Ident.Quote(_spec.NewName)}", steps);
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration) => new Dictionary<string, string>
    {
        ["Table"] = NewQualified,
        ["CompatibilityView"] = OldQualified,
    };

    private string CreateViewSql(PlanningContext context, TableInfo table)
        => CompatibilityView.CreateSql(context, OldQualified, table.Columns.Select(c => Ident.Quote(c.Name)), NewQualified);

    private async Task<TableInfo> RequireRenamedTableAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(_spec.TableOid, ct).ConfigureAwait(false);
        if (table is null || table.Name != _spec.NewName || table.Schema != _spec.Schema)
        {
            throw new ZdtException(
                ErrorIds.TableRenamedElsewhere,
                ErrorKind.InvalidOperation,
                $"Migration {migration.Id} expected the table at {NewQualified}, but it is {(table is null ? "gone" : "now " + table.QualifiedName)}. Nothing was changed.");
        }

        return table;
    }

    /// <summary>The view under the old name, if it is still there and still reads from our table.</summary>
    private async Task<TableInfo?> OurViewAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        var isOurs = table.Dependents.Any(d => d.Schema == _spec.Schema && d.Name == _spec.Table && d.Kind == RelationKind.View);
        if (!isOurs)
        {
            return null;
        }

        return await context.Catalog.ReadTableAsync(_spec.Schema, _spec.Table, ct).ConfigureAwait(false);
    }

    private static void RequireNoDependents(TableInfo view, string what)
        => CompatibilityView.RequireNoDependents(view, what, "Point them at the table's new name");
}
