using Npgsql;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations.Partitions;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Add a constraint without holding a lock that stops the application while the existing rows are
/// checked. Check and foreign key: ADD CONSTRAINT ... NOT VALID (a catalog change; new rows are
/// checked from then on), then VALIDATE CONSTRAINT in its own transaction, which scans under SHARE
/// UPDATE EXCLUSIVE and lets reads and writes go on. Unique and primary key: the unique index is
/// built with CREATE UNIQUE INDEX CONCURRENTLY, then attached in a catalog-only step with ADD
/// CONSTRAINT ... USING INDEX; a primary key's columns must already be NOT NULL (else PostgreSQL
/// would scan under ACCESS EXCLUSIVE to set it). When validation fails, the half-added constraint
/// (or the index) is dropped again and the error counts the rows in the way. One shot. On a
/// partitioned table each leaf partition gets the constraint first (check and foreign key: NOT
/// VALID + VALIDATE, <see cref="PartitionedConstraint"/>; unique and primary key: its index
/// concurrently and USING INDEX, <see cref="PartitionedKeyConstraint"/>), then the parent, which
/// adopts them without a scan or a build.
/// </summary>
internal sealed class ConstraintAddition : OneShotOperation
{
    public const string KindName = "AddConstraint";

    private readonly Spec _spec;

    // The referenced columns as planned (the referenced table's primary key when none were given).
    private IReadOnlyList<string> _referencedColumns;

    // A unique constraint or primary key on a partitioned table as planned (each leaf's name), for its rollback.
    private PartitionedKeyConstraint? _partitionedKey;

    public ConstraintAddition(Spec spec)
    {
        _spec = spec;
        _referencedColumns = spec.ReferencedColumns;
    }

    public sealed record Spec(
        string Schema,
        string Table,
        ConstraintKind Type,
        string? Name,
        IReadOnlyList<string> Columns,
        string? Check,
        string? ReferencedSchema,
        string? ReferencedTable,
        IReadOnlyList<string> ReferencedColumns,
        ForeignKeyAction OnDelete,
        ForeignKeyAction OnUpdate);

    public override string Kind => KindName;

    private string TableName => Ident.Qualify(_spec.Schema, _spec.Table);

    private string Name => _spec.Name ?? DefaultName();

    private string Quoted => Ident.Quote(Name);

    private bool UsesIndex => _spec.Type is ConstraintKind.Unique or ConstraintKind.PrimaryKey;

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        var table = await TableResolver.RequireTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: true, ct).ConfigureAwait(false);
        Ident.Validate(Name, "constraint name");
        if (table.Constraints.Any(c => c.Name == Name))
        {
            throw new ZdtException(ErrorIds.NameTaken, ErrorKind.ResourceExists, $"{table.QualifiedName} already has a constraint named {Quoted}. Choose another name; nothing was changed.")
            { TargetObject = Name };
        }

        var (steps, summary, referenced) = _spec.Type switch
        {
            ConstraintKind.Check => await PlanCheckAsync(context, table, ct).ConfigureAwait(false),
            ConstraintKind.ForeignKey => await PlanForeignKeyAsync(context, table, ct).ConfigureAwait(false),
            _ => await PlanKeyAsync(context, table, ct).ConfigureAwait(false),
        };
        var spec = _spec with
        {
            Name = Name,
            ReferencedSchema = referenced?.Schema,
            ReferencedTable = referenced?.Name,
            ReferencedColumns = referenced is null ? _spec.ReferencedColumns : ReferencedColumns(referenced),
        };
        return new ExpandDesign(
            table,
            summary,
            steps,
            Column: _spec.Columns.Count == 1 ? _spec.Columns[0] : null,
            NewName: null,
            Strategy: UsesIndex ? "ConcurrentIndex" : "NotValidThenValidate",
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: null);
    }

    public override async Task<IReadOnlyList<DdlStep>> PlanRollbackAsync(PlanningContext context, CancellationToken ct)
    {
        var table = await context.Catalog.ReadTableAsync(_spec.Schema, _spec.Table, ct).ConfigureAwait(false);
        if (table is null)
        {
            return Array.Empty<DdlStep>();
        }

        if (table.Kind == RelationKind.PartitionedTable)
        {
            return _spec.Type switch
            {
                ConstraintKind.Check => (await ReadPartitionedAsync(context, table, PartitionedConstraintKind.Check, ct, mustBeAbsent: false).ConfigureAwait(false)).Drop(),
                ConstraintKind.ForeignKey => (await ReadPartitionedAsync(context, table, PartitionedConstraintKind.ForeignKey, ct, mustBeAbsent: false).ConfigureAwait(false)).Drop(),
                _ => _partitionedKey is null ? Array.Empty<DdlStep>() : await _partitionedKey.RollbackAsync(context, ct).ConfigureAwait(false),
            };
        }

        if (table.Constraints.Any(c => c.Name == Name))
        {
            // Only reachable when a step after the ADD failed: drop what it added, whatever it is.
            return new[]
            {
                new DdlStep($"Drop the half-added constraint {Quoted}", new[] { $"ALTER TABLE {table.QualifiedName} DROP CONSTRAINT {Quoted}" }, LockLevel.AccessExclusive, table.QualifiedName, "a catalog change held for milliseconds"),
            };
        }

        var index = Ident.Qualify(_spec.Schema, Name);
        return UsesIndex && await IndexCreation.IndexExistsAsync(context, index, ct).ConfigureAwait(false)
            ? new[] { IndexCreation.DropStep(context, index, table.QualifiedName, $"Drop the index {Ident.Quote(Name)} built for the constraint") }
            : Array.Empty<DdlStep>();
    }

    public override async Task<ZdtException?> ExplainFailureAsync(PlanningContext context, Exception failure, CancellationToken ct)
    {
        var pg = ServerError(failure);
        switch (_spec.Type)
        {
            case ConstraintKind.Check when pg?.SqlState == PostgresErrorCodes.CheckViolation:
            {
                var rows = await CountAsync(context, $"SELECT count(*) FROM {TableName} WHERE NOT ({_spec.Check})", ct).ConfigureAwait(false);
                return new ZdtException(
                    ErrorIds.ConstraintViolated,
                    ErrorKind.InvalidData,
                    $"{rows:N0} row(s) of {TableName} violate CHECK ({_spec.Check}), so the constraint {Quoted} cannot be validated. Fix those rows first. The NOT VALID constraint was dropped again; nothing was changed.",
                    failure)
                { TargetObject = rows };
            }

            case ConstraintKind.ForeignKey when pg?.SqlState == PostgresErrorCodes.ForeignKeyViolation:
            {
                var rows = await CountAsync(context, OrphansSql("count(*)"), ct).ConfigureAwait(false);
                // The example comes from the data: the server's own is in its error detail, which the client redacts.
                var example = await ExampleAsync(context, OrphansSql($"ROW({string.Join(", ", _spec.Columns.Select(c => "c." + Ident.Quote(c)))})::text") + " LIMIT 1", ct).ConfigureAwait(false);
                return new ZdtException(
                    ErrorIds.ConstraintViolated,
                    ErrorKind.InvalidData,
                    $"{rows:N0} row(s) of {TableName} reference a ({string.Join(", ", _spec.Columns)}) that does not exist in {ReferencedName()}, so the foreign key {Quoted} cannot be validated{(example is null ? "" : $" (for example ({string.Join(", ", _spec.Columns)}) = {example})")}. Fix or delete those rows first. The NOT VALID constraint was dropped again; nothing was changed.",
                    failure)
                { TargetObject = rows };
            }

            case ConstraintKind.Unique or ConstraintKind.PrimaryKey when pg?.SqlState == PostgresErrorCodes.UniqueViolation:
            {
                var keys = _spec.Columns.Select(Ident.Quote).ToList();
                var duplicates = await IndexCreation.CountDuplicateKeysAsync(context, TableName, keys, null, ct).ConfigureAwait(false);
                return IndexCreation.DuplicatesError(TableName, $"{(_spec.Type == ConstraintKind.Unique ? "unique constraint" : "primary key")} {Quoted}", keys, duplicates, pg);
            }

            default:
                return null;
        }
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration)
    {
        var details = new Dictionary<string, string>
        {
            ["Table"] = TableName,
            ["Constraint"] = Quoted,
            ["Type"] = _spec.Type.ToString(),
            ["Definition"] = Definition(),
        };
        return details;
    }

    private async Task<(IReadOnlyList<DdlStep>, string, TableInfo?)> PlanCheckAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        if (_spec.Check is null)
        {
            throw new ZdtException(ErrorIds.NoCheckExpression, ErrorKind.InvalidArgument, "A check constraint needs its expression (-Expression). Nothing was changed.");
        }

        SqlTokenizer.RequireFragment(_spec.Check, "check expression");
        await ServerProbe.ValidateAsync(
            context,
            $"check expression ({_spec.Check})",
            new[] { ServerProbe.CopyShape(ServerProbe.Table, table.QualifiedName), $"ALTER TABLE {ServerProbe.Table} ADD CONSTRAINT {Quoted} {Definition()}" },
            ct).ConfigureAwait(false);
        if (table.Kind == RelationKind.PartitionedTable)
        {
            var check = await ReadPartitionedAsync(context, table, PartitionedConstraintKind.Check, ct).ConfigureAwait(false);
            return (check.AddAndValidate(_spec.Check), $"Add the check constraint {Quoted} CHECK ({_spec.Check}) to the partitioned table {table.QualifiedName}: NOT VALID and validated partition by partition, then on each partitioned level without a scan", null);
        }

        return (AddThenValidate(table, LockLevel.AccessExclusive, "the existing rows are not checked (NOT VALID), so this is a catalog change held for milliseconds; inserted and updated rows are checked from now on"), $"Add the check constraint {Quoted} CHECK ({_spec.Check}) to {table.QualifiedName}: NOT VALID, then validated without blocking writes", null);
    }

    private async Task<(IReadOnlyList<DdlStep>, string, TableInfo?)> PlanForeignKeyAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        if (_spec.Columns.Count == 0 || _spec.ReferencedTable is null)
        {
            throw new ZdtException(ErrorIds.IncompleteForeignKey, ErrorKind.InvalidArgument, "A foreign key needs its columns (-Column) and the referenced table (-ReferencedTable). Nothing was changed.");
        }

        IndexCreation.RequireColumns(table, _spec.Columns);
        var referencedSchema = _spec.ReferencedSchema ?? _spec.Schema;
        var referenced = await TableResolver.RequireTableAsync(context, referencedSchema, _spec.ReferencedTable, allowPartitioned: true, ct, mustOwn: false).ConfigureAwait(false);
        var referencedColumns = ReferencedColumns(referenced);
        IndexCreation.RequireColumns(referenced, referencedColumns);
        _referencedColumns = referencedColumns;
        if (referencedColumns.Count != _spec.Columns.Count)
        {
            throw new ZdtException(ErrorIds.IncompleteForeignKey, ErrorKind.InvalidArgument, $"The foreign key has {_spec.Columns.Count} column(s) but references {referencedColumns.Count} of {referenced.QualifiedName}. Nothing was changed.");
        }

        await Execution.PrivilegeErrors.RequireOnColumnsAsync(context.Connection, referenced.QualifiedName, referencedColumns, "REFERENCES", $"A foreign key from {table.QualifiedName}", ct).ConfigureAwait(false);

        // The server checks types, the referenced key's uniqueness and the actions on empty copies
        // (a temporary table may only reference another temporary table).
        var self = referenced.Oid == table.Oid;
        var probeStatements = new List<string> { ServerProbe.CopyShape(ServerProbe.Table, table.QualifiedName, withIndexes: self) };
        if (!self)
        {
            probeStatements.Add(ServerProbe.CopyShape(ServerProbe.OtherTable, referenced.QualifiedName, withIndexes: true));
        }

        probeStatements.Add($"ALTER TABLE {ServerProbe.Table} ADD CONSTRAINT {Quoted} {ForeignKeySql(self ? ServerProbe.Table : ServerProbe.OtherTable, referencedColumns)}");
        await ServerProbe.ValidateAsync(context, "foreign key", probeStatements, ct).ConfigureAwait(false);

        if (table.Kind == RelationKind.PartitionedTable)
        {
            var foreignKey = await ReadPartitionedAsync(context, table, PartitionedConstraintKind.ForeignKey, ct).ConfigureAwait(false);
            return (
                foreignKey.AddForeignKey(ForeignKeySql(referenced.QualifiedName, referencedColumns), referenced.QualifiedName),
                $"Add the foreign key {Quoted} ({string.Join(", ", _spec.Columns.Select(Ident.Quote))}) -> {referenced.QualifiedName} to the partitioned table {table.QualifiedName}: NOT VALID and validated partition by partition, then on the parent, which attaches them without a scan",
                referenced);
        }

        var steps = AddThenValidate(table, LockLevel.ShareRowExclusive, $"the existing rows are not checked (NOT VALID), so this is a catalog change; it takes SHARE ROW EXCLUSIVE on {table.QualifiedName} and {referenced.QualifiedName} for milliseconds, and inserted and updated rows are checked from now on", referenced, referencedColumns);
        return (steps, $"Add the foreign key {Quoted} ({string.Join(", ", _spec.Columns.Select(Ident.Quote))}) -> {referenced.QualifiedName} to {table.QualifiedName}: NOT VALID, then validated without blocking writes", referenced);
    }

    private async Task<(IReadOnlyList<DdlStep>, string, TableInfo?)> PlanKeyAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        var isPrimary = _spec.Type == ConstraintKind.PrimaryKey;
        if (_spec.Columns.Count == 0)
        {
            throw new ZdtException(ErrorIds.NoKeyColumns, ErrorKind.InvalidArgument, $"A {(isPrimary ? "primary key" : "unique constraint")} needs its columns (-Column). Nothing was changed.");
        }

        IndexCreation.RequireColumns(table, _spec.Columns);
        if (isPrimary && table.PrimaryKey is { } existing)
        {
            throw new ZdtException(ErrorIds.PrimaryKeyExists, ErrorKind.ResourceExists, $"{table.QualifiedName} already has the primary key {Ident.Quote(existing.Name)}. Nothing was changed.");
        }

        var nullable = isPrimary ? _spec.Columns.Where(c => !table.Column(c)!.NotNull).ToList() : new List<string>();
        if (nullable.Count > 0)
        {
            throw new ZdtException(
                ErrorIds.PrimaryKeyNeedsNotNull,
                ErrorKind.InvalidOperation,
                $"The primary key's column(s) {string.Join(", ", nullable.Select(Ident.Quote))} of {table.QualifiedName} allow NULL; attaching the key would make PostgreSQL scan the table under ACCESS EXCLUSIVE to set NOT NULL. Make them NOT NULL first with Set-ColumnNotNull (and Complete-Contract), then add the key. Nothing was changed.")
            { TargetObject = nullable };
        }

        await TableResolver.RequireNameFreeAsync(context, _spec.Schema, Name, ct).ConfigureAwait(false);
        var keyword = isPrimary ? "PRIMARY KEY" : "UNIQUE";
        var columns = string.Join(", ", _spec.Columns.Select(Ident.Quote));
        await ServerProbe.ValidateAsync(
            context,
            isPrimary ? "primary key" : "unique constraint",
            new[]
            {
                ServerProbe.CopyShape(ServerProbe.Table, table.QualifiedName),
                $"CREATE UNIQUE INDEX {Quoted} ON {ServerProbe.Table} ({columns})",
                $"ALTER TABLE {ServerProbe.Table} ADD CONSTRAINT {Quoted} {keyword} USING INDEX {Quoted}",
            },
            ct).ConfigureAwait(false);

        if (table.Kind == RelationKind.PartitionedTable)
        {
            var tree = await PartitionTree.ReadAsync(context.Connection, table.Oid, ct).ConfigureAwait(false);
            tree.RequireUniqueKeyAllowed(_spec.Columns, isPrimary ? "primary key" : "unique constraint");
            _partitionedKey = await PartitionedKeyConstraint.PlanAsync(context, tree, Name, isPrimary, _spec.Columns, ct).ConfigureAwait(false);
            return (_partitionedKey.Steps(context), $"Add the {(isPrimary ? "primary key" : "unique constraint")} {Quoted} ({columns}) to the partitioned table {table.QualifiedName}: each of its {tree.Leaves.Count()} partition(s) indexed concurrently and constrained USING INDEX, then the parent adopts them", null);
        }

        var index = Ident.Qualify(_spec.Schema, Name);
        var build = new DdlStep(
            $"Build the unique index {Quoted} concurrently",
            new[] { $"CREATE UNIQUE INDEX CONCURRENTLY {Quoted} ON {table.QualifiedName} ({columns})" },
            LockLevel.ShareUpdateExclusive,
            table.QualifiedName,
            "CONCURRENTLY builds the index while the application keeps reading and writing; it cannot run inside a transaction block")
        {
            Transactional = false,
            CleanupOnFailure = new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {index}" },
            LockTimeout = context.ConcurrentLockTimeout,
        };
        var attach = new DdlStep(
            $"Attach the index as the {(isPrimary ? "primary key" : "unique constraint")} {Quoted}",
            new[] { $"ALTER TABLE {table.QualifiedName} ADD CONSTRAINT {Quoted} {keyword} USING INDEX {Quoted}" },
            LockLevel.AccessExclusive,
            table.QualifiedName,
            "the index is already built and valid (and the columns NOT NULL), so attaching it is a catalog change held for milliseconds");
        return (new[] { build, attach }, $"Add the {(isPrimary ? "primary key" : "unique constraint")} {Quoted} ({columns}) to {table.QualifiedName}: index built concurrently, then attached", null);
    }

    /// <summary>Where in the partition tree the constraint is; at planning, a partition that already has one of its name is refused (NameTaken).</summary>
    private async Task<PartitionedConstraint> ReadPartitionedAsync(PlanningContext context, TableInfo table, PartitionedConstraintKind kind, CancellationToken ct, bool mustBeAbsent = true)
    {
        var tree = await PartitionTree.ReadAsync(context.Connection, table.Oid, ct).ConfigureAwait(false);
        if (kind == PartitionedConstraintKind.ForeignKey && tree.Leaves.FirstOrDefault(n => n.Kind == 'f') is { } foreign)
        {
            throw new ZdtException(
                ErrorIds.ForeignTablePartition,
                ErrorKind.InvalidOperation,
                $"A foreign key on {table.QualifiedName} is not possible: its partition {foreign.QualifiedName} is a foreign table, which cannot have one. Nothing was changed.")
            { TargetObject = foreign.QualifiedName };
        }

        var found = await PartitionedConstraint.ReadAsync(context.Connection, tree, Name, kind, null, ct).ConfigureAwait(false);
        if (mustBeAbsent && !found.Absent)
        {
            throw new ZdtException(ErrorIds.NameTaken, ErrorKind.ResourceExists, $"A partition of {table.QualifiedName} already has a constraint named {Quoted}. Choose another name; nothing was changed.")
            { TargetObject = Name };
        }

        return found;
    }

    private IReadOnlyList<DdlStep> AddThenValidate(TableInfo table, LockLevel addLock, string addWhy, TableInfo? referenced = null, IReadOnlyList<string>? referencedColumns = null)
    {
        var definition = referenced is null ? Definition() : ForeignKeySql(referenced.QualifiedName, referencedColumns!);
        return new[]
        {
            new DdlStep(
                $"Add the constraint {Quoted} NOT VALID",
                new[] { $"ALTER TABLE {table.QualifiedName} ADD CONSTRAINT {Quoted} {definition} NOT VALID" },
                addLock,
                table.QualifiedName,
                addWhy),
            new DdlStep(
                $"Validate the constraint {Quoted} against the existing rows",
                new[] { $"ALTER TABLE {table.QualifiedName} VALIDATE CONSTRAINT {Quoted}" },
                LockLevel.ShareUpdateExclusive,
                table.QualifiedName,
                "scans the table in its own transaction under SHARE UPDATE EXCLUSIVE, which lets the application read and write meanwhile"),
        };
    }

    private string Definition() => _spec.Type switch
    {
        ConstraintKind.Check => $"CHECK ({_spec.Check})",
        ConstraintKind.ForeignKey => ForeignKeySql(ReferencedName(), _referencedColumns),
        ConstraintKind.Unique => $"UNIQUE ({string.Join(", ", _spec.Columns.Select(Ident.Quote))})",
        _ => $"PRIMARY KEY ({string.Join(", ", _spec.Columns.Select(Ident.Quote))})",
    };

    private string ForeignKeySql(string referencedTable, IReadOnlyList<string> referencedColumns)
    {
        var refColumns = referencedColumns.Count == 0 ? "" : $" ({string.Join(", ", referencedColumns.Select(Ident.Quote))})";
        var onDelete = _spec.OnDelete == ForeignKeyAction.NoAction ? "" : " ON DELETE " + ActionSql(_spec.OnDelete);
        var onUpdate = _spec.OnUpdate == ForeignKeyAction.NoAction ? "" : " ON UPDATE " + ActionSql(_spec.OnUpdate);
        return $"FOREIGN KEY ({string.Join(", ", _spec.Columns.Select(Ident.Quote))}) REFERENCES {referencedTable}{refColumns}{onDelete}{onUpdate}";
    }

    private static string ActionSql(ForeignKeyAction action) => action switch
    {
        ForeignKeyAction.Restrict => "RESTRICT",
        ForeignKeyAction.Cascade => "CASCADE",
        ForeignKeyAction.SetNull => "SET NULL",
        ForeignKeyAction.SetDefault => "SET DEFAULT",
        _ => "NO ACTION",
    };

    private string ReferencedName() => Ident.Qualify(_spec.ReferencedSchema ?? _spec.Schema, _spec.ReferencedTable ?? "?");

    /// <summary>The referenced columns as given, else the referenced table's primary key (as PostgreSQL does).</summary>
    private IReadOnlyList<string> ReferencedColumns(TableInfo referenced)
    {
        if (_spec.ReferencedColumns.Count > 0)
        {
            return _spec.ReferencedColumns;
        }

        return referenced.PrimaryKey is { } pk
            ? pk.Columns.Select(n => referenced.ColumnByNumber(n).Name).ToList()
            : throw new ZdtException(ErrorIds.IncompleteForeignKey, ErrorKind.InvalidArgument, $"{referenced.QualifiedName} has no primary key; name the referenced columns (-ReferencedColumn). Nothing was changed.");
    }

    /// <summary>Rows whose key is complete (MATCH SIMPLE: a NULL in the key never violates) but matches no referenced row.</summary>
    private string OrphansSql(string select)
    {
        var notNull = string.Join(" AND ", _spec.Columns.Select(c => $"c.{Ident.Quote(c)} IS NOT NULL"));
        var match = string.Join(" AND ", _spec.Columns.Zip(_referencedColumns).Select(p => $"p.{Ident.Quote(p.Second)} = c.{Ident.Quote(p.First)}"));
        return $"SELECT {select} FROM {TableName} c WHERE {notNull} AND NOT EXISTS (SELECT 1 FROM {ReferencedName()} p WHERE {match})";
    }

    private static async Task<string?> ExampleAsync(PlanningContext context, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, context.Connection);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
    }

    /// <summary>Like PostgreSQL's own choice: table_check, table_col_fkey, table_col_key, table_pkey.</summary>
    private string DefaultName() => _spec.Type switch
    {
        ConstraintKind.Check => Ident.Derive(_spec.Table + "_", "check"),
        ConstraintKind.ForeignKey => Ident.Derive(_spec.Table + "_", _spec.Columns.Append("fkey").ToArray()),
        ConstraintKind.Unique => Ident.Derive(_spec.Table + "_", _spec.Columns.Append("key").ToArray()),
        _ => Ident.Derive(_spec.Table + "_", "pkey"),
    };
}
