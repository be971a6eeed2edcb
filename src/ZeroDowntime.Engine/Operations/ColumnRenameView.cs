using System.Globalization;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Rename columns without copying a row: a version schema holds a view of the table, under the
/// table's own name, that shows the renamed columns under their new names (every other column
/// unchanged, all listed explicitly, security_invoker, the table's grants carried over). A view
/// like this is automatically updatable, so the new application version, which puts the version
/// schema first in its search_path, reads and writes the table through it while the old version
/// keeps using the table. Expand reads no rows: its time does not depend on the table's size.
/// One migration per (version schema, table): a further column of the same table in the same
/// version extends it (the view's column is renamed in place), so one view carries every rename of
/// the release, and the ledger's one-active-migration-per-table index still means what it says.
/// Contract, in one transaction: drop the view and rename the physical columns (and drop the
/// version schema when nothing is left in it), so sessions of the new version fall through to the
/// table, which now has the new names. Undo: drop the view (and the schema when empty).
/// </summary>
internal sealed class ColumnRenameView : MigrationOperation
{
    public const string KindName = "RenameColumnView";

    public const string StrategyName = "View";

    private const string ViewComment = "ZeroDowntime version view: {0} with the new column names of this version schema, until Complete-Contract.";

    // Names every table already has; a rename to one of them would fail at contract.
    private static readonly string[] SystemColumns = ["tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"];

    private readonly Spec _spec;

    public ColumnRenameView(Spec spec)
    {
        _spec = spec;
    }

    /// <summary>One column and the name the version gives it.</summary>
    internal sealed record Rename(string Column, string NewName);

    /// <summary>What the ledger stores: the table (by its name at expand, and its oid), the version schema, the renames in order.</summary>
    internal sealed record Spec(string Schema, string Table, string VersionSchema, IReadOnlyList<Rename> Renames)
    {
        public uint TableOid { get; init; }
    }

    /// <summary>The plan of an extension: its DDL and what the ledger records once it has run.</summary>
    internal sealed record ExtensionDesign(string Summary, IReadOnlyList<DdlStep> Steps, Spec Spec);

    /// <summary>One migration's share of a contract or undo that may run together with others of its version.</summary>
    private sealed record Part(IReadOnlyList<string> Statements, uint? DroppedView, string LockTarget, string Description, string? Note);

    public override string Kind => KindName;

    public override MigrationPhase ContractFrom => MigrationPhase.Expanded;

    /// <summary>Whether the migration's view already serves this rename (the same request run again).</summary>
    public bool HasRename(Rename rename) => _spec.Renames.Contains(rename);

    public string VersionSchemaName => _spec.VersionSchema;

    /// <summary>What the new application version sets: the version schema, then the table's schema.</summary>
    public SearchPathSetting SearchPath => new(new[] { _spec.VersionSchema, _spec.Schema });

    private string TableName => Ident.Qualify(_spec.Schema, _spec.Table);

    private string ViewName => Ident.Qualify(_spec.VersionSchema, _spec.Table);

    private string Version => Ident.Quote(_spec.VersionSchema);

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        // A new migration starts with exactly one rename; further ones extend it (PlanExtendAsync).
        var rename = _spec.Renames.Single();
        VersionSchema.ValidateName(_spec.VersionSchema, _spec.Schema, context.Ledger.SchemaName);
        var table = await TableResolver.RequireFreeTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: true, ct).ConfigureAwait(false);
        RequireRenamable(table, Array.Empty<Rename>(), rename);

        var (exists, isOurs) = await VersionSchema.ReadAsync(context, _spec.VersionSchema, ct).ConfigureAwait(false);
        if (exists && !isOurs)
        {
            throw VersionSchema.NotOursError(_spec.VersionSchema);
        }

        if (exists)
        {
            await TableResolver.RequireNameFreeAsync(context, _spec.VersionSchema, _spec.Table, ct).ConfigureAwait(false);
        }

        var statements = new List<string>();
        if (!exists)
        {
            statements.Add($"CREATE SCHEMA {Version}");
            statements.Add($"COMMENT ON SCHEMA {Version} IS {Ident.Literal(VersionSchema.Comment)}");
        }

        var renamed = new Dictionary<string, string>(StringComparer.Ordinal) { [rename.Column] = rename.NewName };
        statements.Add(CompatibilityView.CreateSql(context, ViewName, table.Columns.Select(c => SelectItem(c.Name, renamed)), TableName));
        statements.Add($"COMMENT ON VIEW {ViewName} IS {Ident.Literal(string.Format(CultureInfo.InvariantCulture, ViewComment, TableName))}");

        // As for a table rename's view: the table's owner owns the view, so whoever manages the
        // table's grants manages the view's. A non-superuser may give a view away only to a role
        // that can create in its schema, hence CREATE on the version schema.
        var currentUser = await CompatibilityView.CurrentUserAsync(context, ct).ConfigureAwait(false);
        var owner = Ident.Quote(table.Owner);
        if (table.Owner != currentUser)
        {
            statements.Add($"GRANT USAGE, CREATE ON SCHEMA {Version} TO {owner}");
            statements.Add($"ALTER VIEW {ViewName} OWNER TO {owner}");
        }

        // Whoever may use the table may look the view up in the version schema.
        var users = table.Grants.Select(g => g.Grantee is null ? "PUBLIC" : Ident.Quote(g.Grantee)).Distinct(StringComparer.Ordinal).ToList();
        if (users.Count > 0)
        {
            statements.Add($"GRANT USAGE ON SCHEMA {Version} TO {string.Join(", ", users)}");
        }

        statements.AddRange(table.Grants.Select(g => CompatibilityView.GrantSql(g with { Column = g.Column is null ? null : renamed.GetValueOrDefault(g.Column, g.Column) }, ViewName)));

        var why = "creating a schema and a view reads no rows and takes only ACCESS SHARE on the table, which its readers and writers do not wait for; the time does not depend on the table's size"
            + (context.SupportsSecurityInvokerViews ? "" : "; before PostgreSQL 15 the view checks permissions as its owner, not the caller (no security_invoker)");
        var step = new DdlStep($"Create the version view {ViewName} with {Describe(rename)}", statements, LockLevel.AccessShare, TableName, why);
        var spec = _spec with { TableOid = table.Oid };
        return new ExpandDesign(
            table,
            $"Rename column {Ident.Quote(rename.Column)} of {TableName} to {Ident.Quote(rename.NewName)} in version schema {Version} (view {ViewName}; nothing is copied)",
            new[] { step },
            Column: rename.Column,
            NewName: rename.NewName,
            Strategy: StrategyName,
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: null);
    }

    /// <summary>
    /// Plans adding one more rename of the same table to this migration's view: the view's column is
    /// renamed in place (ALTER VIEW ... RENAME COLUMN), which keeps the view, its grants (column
    /// grants follow the column) and its oid. Changes nothing.
    /// </summary>
    public async Task<ExtensionDesign> PlanExtendAsync(PlanningContext context, LedgerRow migration, Rename rename, CancellationToken ct)
    {
        var table = await RequireTableInPlaceAsync(context, migration, ct).ConfigureAwait(false);
        RequireRenamable(table, _spec.Renames, rename, migration.Id);
        var view = await OurViewAsync(context, table, ct).ConfigureAwait(false) ?? throw new ZdtException(
            ErrorIds.VersionViewMissing,
            ErrorKind.InvalidOperation,
            $"The view {ViewName} of migration {migration.Id} is gone (dropped outside ZeroDowntime), so it cannot be extended. Undo migration {migration.Id} and start again; nothing was changed.")
        { TargetObject = migration.Id };

        // ALTER VIEW ... RENAME COLUMN exists from PostgreSQL 13; ALTER TABLE does the same on a view before that.
        var alter = context.ServerVersion >= 130000 ? "ALTER VIEW" : "ALTER TABLE";
        var step = new DdlStep(
            $"Add {Describe(rename)} to the version view {ViewName}",
            new[] { $"{alter} {view.QualifiedName} RENAME COLUMN {Ident.Quote(rename.Column)} TO {Ident.Quote(rename.NewName)}" },
            LockLevel.AccessExclusive,
            view.QualifiedName,
            "renaming a view's column is a catalog change on the view alone; the table is not locked. Sessions already using this version's view must not use the column's old name through it any more: add every rename of a release before deploying it");
        var spec = _spec with { Renames = _spec.Renames.Append(rename).ToList() };
        return new ExtensionDesign(
            $"Rename column {Ident.Quote(rename.Column)} of {TableName} to {Ident.Quote(rename.NewName)} in version schema {Version}, extending migration {migration.Id} (view {ViewName}; nothing is copied)",
            new[] { step },
            spec);
    }

    public override async Task<PhaseDesign> PlanContractAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
        => await PlanTogetherAsync(context, _spec.VersionSchema, new[] { (this, migration) }, PhaseAction.Contract, TableName, ct).ConfigureAwait(false);

    public override async Task<PhaseDesign> PlanUndoAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
        => await PlanTogetherAsync(context, _spec.VersionSchema, new[] { (this, migration) }, PhaseAction.Undo, TableName, ct).ConfigureAwait(false);

    /// <summary>
    /// The contract or undo of several migrations of one version schema as ONE step (one
    /// transaction): the new application version sees every table of its release switch at once,
    /// and the version schema is dropped in the same transaction when nothing else is left in it.
    /// </summary>
    public static async Task<PhaseDesign> PlanTogetherAsync(
        PlanningContext context,
        string versionSchema,
        IReadOnlyList<(ColumnRenameView Operation, LedgerRow Row)> migrations,
        PhaseAction action,
        string target,
        CancellationToken ct)
    {
        var parts = new List<Part>();
        foreach (var (operation, row) in migrations)
        {
            parts.Add(action == PhaseAction.Contract
                ? await operation.ContractPartAsync(context, row, ct).ConfigureAwait(false)
                : await operation.UndoPartAsync(context, row, ct).ConfigureAwait(false));
        }

        var statements = parts.SelectMany(p => p.Statements).ToList();
        var (exists, isOurs) = await VersionSchema.ReadAsync(context, versionSchema, ct).ConfigureAwait(false);
        var dropped = parts.Where(p => p.DroppedView is not null).Select(p => p.DroppedView!.Value).ToList();
        var dropSchema = exists && isOurs && await VersionSchema.ObjectsLeftAfterAsync(context, versionSchema, dropped, ct).ConfigureAwait(false) == 0;
        if (dropSchema)
        {
            statements.Add($"DROP SCHEMA {Ident.Quote(versionSchema)}");
        }

        var what = string.Join("; ", parts.Select(p => p.Description));
        var schemaNote = dropSchema ? $", then the version schema {Ident.Quote(versionSchema)}, now empty" : "";
        var summary = action == PhaseAction.Contract
            ? $"Complete version schema {Ident.Quote(versionSchema)}: {what}{schemaNote}. Sessions of the new version fall through to the tables, which now have the new names"
            : $"Undo in version schema {Ident.Quote(versionSchema)}: {what}{schemaNote}. The tables are as before";
        if (statements.Count == 0)
        {
            return new PhaseDesign(target, summary, Array.Empty<DdlStep>());
        }

        var why = action == PhaseAction.Contract
            ? "dropping a view and renaming a column are catalog changes: the lock is held for milliseconds whatever the table's size, and only sessions using these tables wait for it"
            : "dropping a view is a catalog change; the tables are not touched";
        var notes = string.Concat(parts.Where(p => p.Note is not null).Select(p => "; " + p.Note));
        var step = new DdlStep(
            action == PhaseAction.Contract ? $"Complete version schema {Ident.Quote(versionSchema)} in one transaction" : $"Drop the version views of {Ident.Quote(versionSchema)}",
            statements,
            LockLevel.AccessExclusive,
            parts.Select(p => p.LockTarget).FirstOrDefault() ?? target,
            why + notes);
        return new PhaseDesign(target, summary, new[] { step });
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration)
    {
        var details = new Dictionary<string, string>
        {
            ["VersionSchema"] = _spec.VersionSchema,
            ["View"] = ViewName,
            ["Table"] = TableName,
            ["Renames"] = string.Join(", ", _spec.Renames.Select(Describe)),
        };
        foreach (var (key, value) in SearchPath.ToDetails())
        {
            details[key] = value;
        }

        return details;
    }

    /// <summary>The ledger's column_name and new_name: every renamed column of the view, in order.</summary>
    public static (string Columns, string NewNames) LedgerColumns(Spec spec)
        => (string.Join(", ", spec.Renames.Select(r => r.Column)), string.Join(", ", spec.Renames.Select(r => r.NewName)));

    private async Task<Part> ContractPartAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await RequireTableInPlaceAsync(context, migration, ct).ConfigureAwait(false);
        var statements = new List<string>();
        var view = await OurViewAsync(context, table, ct).ConfigureAwait(false);
        if (view is not null)
        {
            CompatibilityView.RequireNoDependents(view, $"complete migration {migration.Id}", "Drop them, or rebuild them on the table with its new column names,");
            statements.Add($"DROP VIEW {view.QualifiedName}");
        }

        // Planned from the live catalog, so a contract that is run again finds what is already done.
        var renamedNumbers = new List<short>();
        foreach (var rename in _spec.Renames)
        {
            var column = table.Column(rename.Column);
            var already = table.Column(rename.NewName);
            if (column is not null && already is null)
            {
                statements.Add($"ALTER TABLE {TableName} RENAME COLUMN {Ident.Quote(rename.Column)} TO {Ident.Quote(rename.NewName)}");
                renamedNumbers.Add(column.Number);
            }
            else if (column is not null || already is null)
            {
                throw new ZdtException(
                    ErrorIds.TableChangedElsewhere,
                    ErrorKind.InvalidOperation,
                    $"Migration {migration.Id} renames column {Ident.Quote(rename.Column)} of {TableName} to {Ident.Quote(rename.NewName)}, but the table now has {(column is null ? "neither column" : "both columns")}; it was changed outside ZeroDowntime. Nothing was changed.")
                { TargetObject = migration.Id };
            }
        }

        // Views built on the table bind its columns by number, so they keep working after the
        // rename, and their own column names do not change: allowed, and said in the plan.
        var viewsOnColumns = table.Dependents
            .Where(d => !(d.Schema == _spec.VersionSchema && d.Name == _spec.Table) && d.Columns.Intersect(renamedNumbers).Any())
            .Select(d => d.QualifiedName)
            .ToList();
        var note = viewsOnColumns.Count == 0
            ? null
            : $"{string.Join(", ", viewsOnColumns)} use renamed columns of {TableName} and keep working unchanged (views bind columns by number; their own column names stay)";
        var description = $"drop the view {ViewName} and rename {string.Join(", ", _spec.Renames.Select(Describe))} in {TableName}";
        return new Part(statements, view?.Oid, TableName, description, note);
    }

    private async Task<Part> UndoPartAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(_spec.TableOid, ct).ConfigureAwait(false);
        var view = table is null ? null : await OurViewAsync(context, table, ct).ConfigureAwait(false);
        var statements = new List<string>();
        if (view is not null)
        {
            CompatibilityView.RequireNoDependents(view, $"undo migration {migration.Id}", "Drop them, or rebuild them on the table,");
            statements.Add($"DROP VIEW {view.QualifiedName}");
        }

        return new Part(statements, view?.Oid, ViewName, $"drop the view {ViewName} ({string.Join(", ", _spec.Renames.Select(Describe))} of {TableName})", null);
    }

    /// <summary>The checks for one rename, given the renames the view already has. Throws; changes nothing.</summary>
    private void RequireRenamable(TableInfo table, IReadOnlyList<Rename> existing, Rename rename, long? migrationId = null)
    {
        Ident.Validate(rename.Column, "column name");
        Ident.Validate(rename.NewName, "new column name");
        var old = Ident.Quote(rename.Column);
        var @new = Ident.Quote(rename.NewName);
        var inMigration = migrationId is null ? "" : $" (migration {migrationId})";

        if (existing.FirstOrDefault(r => r.Column == rename.Column) is { } done)
        {
            throw new ZdtException(
                ErrorIds.ColumnAlreadyRenamed,
                ErrorKind.ResourceExists,
                $"Column {old} of {table.QualifiedName} is already renamed to {Ident.Quote(done.NewName)} in version schema {Version}{inMigration}. A version gives a column one name; to change it, undo that migration and start again. Nothing was changed.")
            { TargetObject = $"{table.QualifiedName}.{old}" };
        }

        if (table.Column(rename.Column) is null)
        {
            var asNewName = existing.FirstOrDefault(r => r.NewName == rename.Column);
            var hint = asNewName is not null
                ? $" {old} is the new name version schema {Version} gives to column {Ident.Quote(asNewName.Column)}; name the table's column."
                : SuggestColumn(table, rename.Column);
            throw new ZdtException(ErrorIds.ColumnNotFound, ErrorKind.ObjectNotFound, $"Column {old} does not exist in {table.QualifiedName}.{hint} Nothing was changed.")
            { TargetObject = $"{table.QualifiedName}.{old}" };
        }

        if (rename.Column == rename.NewName)
        {
            throw new ZdtException(ErrorIds.SameName, ErrorKind.InvalidArgument, $"The new name is the same as the old one ({old}); nothing to do.");
        }

        var clash = table.Column(rename.NewName) is not null
            ? $"{table.QualifiedName} already has a column {@new}"
            : SystemColumns.Contains(rename.NewName, StringComparer.Ordinal)
                ? $"{@new} is the name of a system column every table has"
                : existing.FirstOrDefault(r => r.NewName == rename.NewName) is { } taken
                    ? $"version schema {Version} already gives the name {@new} to column {Ident.Quote(taken.Column)} of {table.QualifiedName}{inMigration}"
                    : null;
        if (clash is not null)
        {
            throw new ZdtException(ErrorIds.ColumnExists, ErrorKind.ResourceExists, $"{clash}. Choose another name; nothing was changed.")
            { TargetObject = $"{table.QualifiedName}.{@new}" };
        }
    }

    /// <summary>The table by oid, still under the name and schema it had at expand (its view stands for that name).</summary>
    private async Task<TableInfo> RequireTableInPlaceAsync(PlanningContext context, LedgerRow migration, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(_spec.TableOid, ct).ConfigureAwait(false);
        if (table is null || table.Name != _spec.Table || table.Schema != _spec.Schema)
        {
            throw new ZdtException(
                ErrorIds.TableRenamedElsewhere,
                ErrorKind.InvalidOperation,
                $"Migration {migration.Id} expected the table at {TableName}, but it is {(table is null ? "gone" : "now " + table.QualifiedName)}. Nothing was changed.")
            { TargetObject = migration.Id };
        }

        return table;
    }

    /// <summary>The view in the version schema, if it is still there and still reads from our table.</summary>
    private async Task<TableInfo?> OurViewAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        var isOurs = table.Dependents.Any(d => d.Schema == _spec.VersionSchema && d.Name == _spec.Table && d.Kind == RelationKind.View);
        return isOurs ? await context.Catalog.ReadTableAsync(_spec.VersionSchema, _spec.Table, ct).ConfigureAwait(false) : null;
    }

    private static string SelectItem(string column, IReadOnlyDictionary<string, string> renamed)
        => renamed.TryGetValue(column, out var newName) ? $"{Ident.Quote(column)} AS {Ident.Quote(newName)}" : Ident.Quote(column);

    private static string Describe(Rename rename) => $"{Ident.Quote(rename.Column)} -> {Ident.Quote(rename.NewName)}";

    private static string SuggestColumn(TableInfo table, string column)
    {
        var similar = table.Columns.Where(c => string.Equals(c.Name, column, StringComparison.OrdinalIgnoreCase)).Select(c => Ident.Quote(c.Name)).ToList();
        return similar.Count > 0 ? $" Names are exact (case-sensitive); did you mean {string.Join(" or ", similar)}?" : "";
    }
}
