using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// Rebuilds what depends on the old column on the new one, without long locks, and carries over
/// at contract everything a plain ALTER keeps: indexes (plain, unique, partial, expression,
/// NULLS NOT DISTINCT) with their comments, CLUSTER mark and REPLICA IDENTITY; UNIQUE constraints
/// (index built concurrently, attached USING INDEX); CHECKs and foreign keys (NOT VALID, validated
/// at contract); extended statistics objects. The copies' names: <see cref="Names"/>.
/// </summary>
internal sealed class DependentObjectCopier
{
    private readonly string _schema;
    private readonly string _table;
    private readonly string _oldColumn;
    private readonly string _newColumn;
    private readonly bool _newNameInObjectNames;

    /// <summary>
    /// <paramref name="newNameInObjectNames"/> is true for a rename: an object whose name contains the
    /// old column's name gets the new one (orders_address_idx becomes orders_billing_address_idx).
    /// False keeps every original name.
    /// </summary>
    public DependentObjectCopier(string schema, string table, string oldColumn, string newColumn, bool newNameInObjectNames)
    {
        _schema = schema;
        _table = table;
        _oldColumn = oldColumn;
        _newColumn = newColumn;
        _newNameInObjectNames = newNameInObjectNames;
    }

    private string TableName => Ident.Qualify(_schema, _table);

    /// <summary>Whether an index uses the column (keys, INCLUDE, expressions, predicate, or its constraint's columns).</summary>
    public static bool UsesColumn(TableInfo table, IndexInfo index, short column)
        => index.Columns.Contains(column)
            || table.Constraints.Any(c => c.Name == index.ConstraintName && c.Columns.Contains(column));

    /// <summary>
    /// What is rebuilt on the new column: every index, unique constraint, check, foreign key and
    /// statistics object of the old one; with <paramref name="primaryKeyAndReferences"/> (a type
    /// change) also the primary key and the other tables' foreign keys that reference the column.
    /// </summary>
    public IReadOnlyList<CopiedObject> Plan(TableInfo table, ColumnInfo column, IReadOnlyList<StatisticsInfo> statistics, bool primaryKeyAndReferences = false)
    {
        var copies = new List<CopiedObject>();
        if (primaryKeyAndReferences && table.PrimaryKey is { } key && key.Columns.Contains(column.Number) && table.Indexes.FirstOrDefault(i => i.IsPrimary) is { } primary)
        {
            var building = Ident.Derive("", primary.Name, "zdt");
            copies.Add(new CopiedObject(CopiedObjectKind.PrimaryKey, key.Name, building, key.Name, RewriteIndex(table, primary, building))
            {
                Comment = primary.Comment,
                ReplicaIdentity = primary.IsReplicaIdentity,
                Clustered = primary.IsClustered,
            });
        }

        if (primaryKeyAndReferences)
        {
            foreach (var reference in table.ReferencedBy.Where(r => r.ReferencedColumns.Contains(column.Number)))
            {
                var referencesAt = ColumnReferenceRewriter.IndexOfKeyword(reference.Definition, "REFERENCES");
                var tail = ColumnReferenceRewriter.Rename(reference.Definition[referencesAt..], _oldColumn, _newColumn);
                var definition = reference.Definition[..referencesAt] + tail;
                copies.Add(new CopiedObject(CopiedObjectKind.IncomingForeignKey, reference.Name, Ident.Derive("", reference.Name, "zdt"), reference.Name, NotValidClause.Add(definition))
                {
                    ObjectSchema = reference.TableSchema,
                    OnTable = reference.TableName,
                });
            }
        }

        foreach (var index in table.Indexes.Where(i => !i.IsPrimary && UsesColumn(table, i, column.Number)))
        {
            var backing = table.Constraints.FirstOrDefault(c => c.Name == index.ConstraintName && c.Type == ConstraintType.Unique);
            var (building, final) = Names(index.Name);
            copies.Add(new CopiedObject(backing is null ? CopiedObjectKind.Index : CopiedObjectKind.Unique, index.Name, building, final, RewriteIndex(table, index, building))
            {
                OriginalDefinition = backing is null ? Concurrently(index.Definition) : null,
                BuildAtContract = index.NullsNotDistinct,
                AttachOptions = backing is null ? "" : Deferrable(backing),
                Comment = index.Comment,
                ReplicaIdentity = index.IsReplicaIdentity,
                Clustered = index.IsClustered,
            });
        }

        foreach (var constraint in table.Constraints.Where(c => c.Columns.Contains(column.Number) && c.Type is ConstraintType.Check or ConstraintType.ForeignKey))
        {
            var (building, final) = Names(constraint.Name);
            copies.Add(new CopiedObject(constraint.Type == ConstraintType.Check ? CopiedObjectKind.Check : CopiedObjectKind.ForeignKey, constraint.Name, building, final, RewriteConstraint(constraint)));
        }

        foreach (var statistic in statistics.Where(s => s.Columns.Contains(column.Number)))
        {
            var (building, final) = Names(statistic.Name);
            var kinds = statistic.Kinds.Count is 0 or 3 ? "" : $" ({string.Join(", ", statistic.Kinds)})";
            var targets = ColumnReferenceRewriter.Rename(statistic.Targets, _oldColumn, _newColumn);
            copies.Add(new CopiedObject(CopiedObjectKind.Statistics, statistic.Name, building, final, $"CREATE STATISTICS {Ident.Qualify(statistic.Schema, building)}{kinds} ON {targets} FROM {TableName}")
            {
                ObjectSchema = statistic.Schema,
                StatisticsTarget = statistic.StatisticsTarget,
                Comment = statistic.Comment,
            });
        }

        return copies;
    }

    /// <summary>Refuses, before anything changes, when a copy's name is already used.</summary>
    public static async Task RequireNamesFreeAsync(PlanningContext context, TableInfo table, IReadOnlyList<CopiedObject> copies, CancellationToken ct)
    {
        foreach (var copy in copies)
        {
            var taken = copy.Kind switch
            {
                _ when copy.Kind.IsIndex() => await context.Catalog.DescribeNameUseAsync(table.Schema, copy.Building, ct).ConfigureAwait(false),
                CopiedObjectKind.Statistics => await context.Catalog.StatisticsNameTakenAsync(copy.ObjectSchema!, copy.Building, ct).ConfigureAwait(false) ? "statistics object" : null,
                CopiedObjectKind.IncomingForeignKey => table.ReferencedBy.Any(c => c.Name == copy.Building && c.TableSchema == copy.ObjectSchema && c.TableName == copy.OnTable) ? "constraint" : null,
                _ => table.Constraints.Any(c => c.Name == copy.Building) ? "constraint" : null,
            };
            if (taken is not null)
            {
                throw new ZdtException(
                    ErrorIds.NameTaken,
                    ErrorKind.ResourceExists,
                    $"The copy of {copy.Kind.Describe()} {Ident.Quote(copy.Original)} on the new column would be named {Ident.Quote(copy.Building)}, which a {taken} already uses. Rename that object first; nothing was changed.");
            }
        }
    }

    /// <summary>Statements for the expand's first (catalog-only) transaction: NOT VALID constraints and statistics objects.</summary>
    public IEnumerable<string> ExpandCatalogStatements(IReadOnlyList<CopiedObject> copies)
    {
        foreach (var copy in copies)
        {
            if (copy.Kind.IsNotValidConstraint())
            {
                yield return $"ALTER TABLE {TableName} ADD CONSTRAINT {Ident.Quote(copy.Building)} {copy.Definition}";
            }
            else if (copy.Kind == CopiedObjectKind.Statistics)
            {
                var name = Ident.Qualify(copy.ObjectSchema!, copy.Building);
                yield return copy.Definition;
                if (copy.StatisticsTarget >= 0)
                {
                    yield return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"ALTER STATISTICS {name} SET STATISTICS {copy.StatisticsTarget}");
                }

                if (copy.Comment is not null)
                {
                    yield return $"COMMENT ON STATISTICS {name} IS {Ident.Literal(copy.Comment)}";
                }
            }
        }
    }

    /// <summary>The expand's index builds (CONCURRENTLY) and USING INDEX attachments, except those deferred to contract.</summary>
    public IEnumerable<DdlStep> ExpandIndexSteps(PlanningContext context, IReadOnlyList<CopiedObject> copies)
        => copies.Where(c => c.Kind.IsIndex() && !c.BuildAtContract).SelectMany(c => BuildSteps(context, c));

    /// <summary>
    /// Contract steps before the swap: build the indexes deferred to now (the backfill has made the
    /// new column equal to the old, whose index proves the data unique), then validate the NOT VALID
    /// constraints. Planned from the catalog: what a resumed contract already did is not repeated.
    /// </summary>
    public IEnumerable<DdlStep> ContractPreparationSteps(PlanningContext context, TableInfo table, IReadOnlyList<CopiedObject> copies)
    {
        foreach (var copy in copies.Where(c => c.BuildAtContract))
        {
            var index = table.Indexes.FirstOrDefault(i => i.Name == copy.Building);
            if (index is { IsValid: true })
            {
                if (copy.Kind == CopiedObjectKind.Unique && index.ConstraintName is null)
                {
                    yield return AttachStep(copy);
                }

                continue;
            }

            foreach (var step in BuildSteps(context, copy))
            {
                yield return step;
            }
        }

        foreach (var copy in copies.Where(c => c.Kind == CopiedObjectKind.IncomingForeignKey))
        {
            // Added only now: while rows were not backfilled, the referencing table's writes would
            // have been checked against a new column still NULL for them.
            var referencing = Ident.Qualify(copy.ObjectSchema!, copy.OnTable!);
            var existing = table.ReferencedBy.FirstOrDefault(c => c.Name == copy.Building && c.TableSchema == copy.ObjectSchema && c.TableName == copy.OnTable);
            if (existing is null)
            {
                yield return new DdlStep(
                    $"Point a copy of {Ident.Quote(copy.Original)} of {referencing} at {Ident.Quote(_newColumn)}, NOT VALID",
                    new[] { $"ALTER TABLE {referencing} ADD CONSTRAINT {Ident.Quote(copy.Building)} {copy.Definition}" },
                    LockLevel.ShareRowExclusive,
                    referencing,
                    "NOT VALID checks no existing row: a catalog change held for milliseconds (SHARE ROW EXCLUSIVE on both tables)");
            }

            if (existing is not { Validated: true })
            {
                yield return new DdlStep(
                    $"Validate {Ident.Quote(copy.Building)} of {referencing}",
                    new[] { $"ALTER TABLE {referencing} VALIDATE CONSTRAINT {Ident.Quote(copy.Building)}" },
                    LockLevel.ShareUpdateExclusive,
                    referencing,
                    "checks every referencing row under SHARE UPDATE EXCLUSIVE, which does not block reads or writes");
            }
        }

        foreach (var copy in copies.Where(c => c.Kind.IsNotValidConstraint()))
        {
            if (table.Constraints.FirstOrDefault(c => c.Name == copy.Building) is { Validated: false })
            {
                yield return new DdlStep(
                    $"Validate {Ident.Quote(copy.Building)}",
                    new[] { $"ALTER TABLE {TableName} VALIDATE CONSTRAINT {Ident.Quote(copy.Building)}" },
                    LockLevel.ShareUpdateExclusive,
                    TableName,
                    $"{(copy.Kind == CopiedObjectKind.ForeignKey ? "checks every row against the referenced table" : "checks every row")} under SHARE UPDATE EXCLUSIVE, which does not block reads or writes");
            }
        }
    }

    /// <summary>
    /// The old column's plain indexes, dropped concurrently before the swap (dropped with the column
    /// they would be unlinked under its ACCESS EXCLUSIVE lock, for a time that grows with their size).
    /// The replica identity index stays until the swap hands the identity to its copy: without it,
    /// UPDATE and DELETE in a publication would fail in between.
    /// </summary>
    public IEnumerable<DdlStep> EarlyDropSteps(PlanningContext context, TableInfo table, short oldColumn, IReadOnlyList<CopiedObject> copies)
        => copies
            .Where(c => c.Kind == CopiedObjectKind.Index && !c.ReplicaIdentity && table.Indexes.Any(i => i.Name == c.Original && UsesColumn(table, i, oldColumn)))
            .Select(c => new DdlStep(
                $"Drop the old column's index {Ident.Quote(c.Original)} concurrently",
                new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {Ident.Qualify(_schema, c.Original)}" },
                LockLevel.ShareUpdateExclusive,
                TableName,
                "CONCURRENTLY does not block reads or writes; the new column's copy of it already serves the new application version")
            {
                Transactional = false,
                LockTimeout = context.ConcurrentLockTimeout,
            });

    /// <summary>
    /// Swap statements that must run while the old objects still exist: the copies take the
    /// replica identity, the CLUSTER mark and the comments. The new column must be NOT NULL by then
    /// when it becomes the replica identity (PostgreSQL requires it of the index's columns).
    /// </summary>
    public IEnumerable<string> SwapBeforeDrop(IReadOnlyList<CopiedObject> copies)
    {
        // The referencing tables' original foreign keys depend on the primary key's index.
        foreach (var copy in copies.Where(c => c.Kind == CopiedObjectKind.IncomingForeignKey))
        {
            yield return $"ALTER TABLE {Ident.Qualify(copy.ObjectSchema!, copy.OnTable!)} DROP CONSTRAINT {Ident.Quote(copy.Original)}";
        }

        foreach (var copy in copies.Where(c => c.Kind == CopiedObjectKind.PrimaryKey))
        {
            yield return $"ALTER TABLE {TableName} DROP CONSTRAINT {Ident.Quote(copy.Original)}";
        }

        foreach (var copy in copies.Where(c => c.Kind.IsIndex()))
        {
            var index = Ident.Qualify(_schema, copy.Building);
            if (copy.Comment is not null)
            {
                yield return $"COMMENT ON INDEX {index} IS {Ident.Literal(copy.Comment)}";
            }

            if (copy.ReplicaIdentity)
            {
                yield return $"ALTER TABLE {TableName} REPLICA IDENTITY USING INDEX {Ident.Quote(copy.Building)}";
            }

            if (copy.Clustered)
            {
                yield return $"ALTER TABLE {TableName} CLUSTER ON {Ident.Quote(copy.Building)}";
            }
        }
    }

    /// <summary>Swap statements after the old column (and with it the originals) is gone: the copies take their final names.</summary>
    public IEnumerable<string> SwapAfterDrop(IReadOnlyList<CopiedObject> copies)
        => copies.Where(c => c.Building != c.Final).Select(c => c.Kind switch
        {
            // USING INDEX renames the index to the constraint's name, as the original's was. The
            // column is NOT NULL by now, so no scan.
            CopiedObjectKind.PrimaryKey => $"ALTER TABLE {TableName} ADD CONSTRAINT {Ident.Quote(c.Final)} PRIMARY KEY USING INDEX {Ident.Quote(c.Building)}",
            CopiedObjectKind.IncomingForeignKey => $"ALTER TABLE {Ident.Qualify(c.ObjectSchema!, c.OnTable!)} RENAME CONSTRAINT {Ident.Quote(c.Building)} TO {Ident.Quote(c.Final)}",
            _ when c.Kind.IsIndex() => $"ALTER INDEX {Ident.Qualify(_schema, c.Building)} RENAME TO {Ident.Quote(c.Final)}",
            CopiedObjectKind.Statistics => $"ALTER STATISTICS {Ident.Qualify(c.ObjectSchema!, c.Building)} RENAME TO {Ident.Quote(c.Final)}",
            _ => $"ALTER TABLE {TableName} RENAME CONSTRAINT {Ident.Quote(c.Building)} TO {Ident.Quote(c.Final)}",
        });

    /// <summary>Undo, before the new column is dropped: the referencing tables' copies depend on its index.</summary>
    public IEnumerable<string> UndoBeforeDropStatements(IReadOnlyList<CopiedObject> copies)
        => copies.Where(c => c.Kind == CopiedObjectKind.IncomingForeignKey)
            .Select(c => $"ALTER TABLE {Ident.Qualify(c.ObjectSchema!, c.OnTable!)} DROP CONSTRAINT IF EXISTS {Ident.Quote(c.Building)}");

    /// <summary>Undo after a contract that stopped half-way: the old column's plain indexes it dropped are built again, with their comment and CLUSTER mark.</summary>
    public IEnumerable<DdlStep> UndoSteps(PlanningContext context, TableInfo table, IReadOnlyList<CopiedObject> copies)
    {
        foreach (var copy in copies.Where(c => c.OriginalDefinition is not null && table.Indexes.All(i => i.Name != c.Original || !i.IsValid)))
        {
            var original = Ident.Qualify(_schema, copy.Original);
            var invalid = table.Indexes.Any(i => i.Name == copy.Original);
            var statements = new List<string>();
            if (invalid)
            {
                // An INVALID leftover of an interrupted DROP INDEX CONCURRENTLY: build it afresh.
                statements.Add($"DROP INDEX CONCURRENTLY IF EXISTS {original}");
            }

            statements.Add(copy.OriginalDefinition!);
            yield return new DdlStep($"Build the old column's index {Ident.Quote(copy.Original)} again, concurrently", statements, LockLevel.ShareUpdateExclusive, TableName, "CONCURRENTLY builds without blocking writes; a failed build's INVALID index is dropped")
            {
                Transactional = false,
                LockTimeout = context.ConcurrentLockTimeout,
                CleanupOnFailure = new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {original}" },
            };
            var marks = new List<string>();
            if (copy.Comment is not null)
            {
                marks.Add($"COMMENT ON INDEX {original} IS {Ident.Literal(copy.Comment)}");
            }

            if (copy.Clustered)
            {
                marks.Add($"ALTER TABLE {TableName} CLUSTER ON {Ident.Quote(copy.Original)}");
            }

            if (marks.Count > 0)
            {
                yield return new DdlStep($"Give {Ident.Quote(copy.Original)} its comment and CLUSTER mark again", marks, LockLevel.ShareUpdateExclusive, TableName, "catalog changes only");
            }
        }
    }

    private IEnumerable<DdlStep> BuildSteps(PlanningContext context, CopiedObject copy)
    {
        var index = Ident.Qualify(_schema, copy.Building);
        yield return new DdlStep($"Build {copy.Kind.Describe()} index {Ident.Quote(copy.Building)} on {Ident.Quote(_newColumn)} concurrently", new[] { copy.Definition }, LockLevel.ShareUpdateExclusive, TableName, "CONCURRENTLY builds without blocking writes; a failed build's INVALID index is dropped")
        {
            Transactional = false,
            LockTimeout = context.ConcurrentLockTimeout,
            CleanupOnFailure = new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {index}" },
        };
        if (copy.Kind == CopiedObjectKind.Unique)
        {
            yield return AttachStep(copy);
        }
    }

    private DdlStep AttachStep(CopiedObject copy)
        => new(
            $"Attach unique constraint {Ident.Quote(copy.Building)} to its index",
            new[] { $"ALTER TABLE {TableName} ADD CONSTRAINT {Ident.Quote(copy.Building)} UNIQUE USING INDEX {Ident.Quote(copy.Building)}{copy.AttachOptions}" },
            LockLevel.AccessExclusive,
            TableName,
            "the index already exists and is valid: catalog change only");

    /// <summary>
    /// The name an object gets on the new column: for a rename, the old column's name replaced by
    /// the new one where it is a part of the name between underscores; otherwise a temporary name that takes over the original
    /// once the old object is dropped.
    /// </summary>
    private (string Building, string Final) Names(string original)
    {
        if (_newNameInObjectNames)
        {
            // Only where the column's name is a whole underscore-separated part, as in the names
            // PostgreSQL generates (table_column_suffix): renaming column "a" must not touch "t_stats".
            var replaced = System.Text.RegularExpressions.Regex.Replace(
                original,
                $"(?<=^|_){System.Text.RegularExpressions.Regex.Escape(_oldColumn)}(?=_|$)",
                _newColumn.Replace("$", "$$", StringComparison.Ordinal));
            if (replaced != original && System.Text.Encoding.UTF8.GetByteCount(replaced) <= Ident.MaxBytes)
            {
                return (replaced, replaced);
            }
        }

        return (Ident.Derive("", original, "zdt"), original);
    }

    private string RewriteIndex(TableInfo table, IndexInfo index, string newName)
    {
        // pg_get_indexdef: CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING method (...) ...
        var usingAt = ColumnReferenceRewriter.IndexOfKeyword(index.Definition, "USING");
        var tail = ColumnReferenceRewriter.Rename(index.Definition[usingAt..], _oldColumn, _newColumn);
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
        var definition = ColumnReferenceRewriter.Rename(head, _oldColumn, _newColumn) + tail;
        return NotValidClause.Add(definition);
    }

    private static string Deferrable(ConstraintInfo original)
        => original.Definition.Contains("DEFERRABLE", StringComparison.Ordinal) && !original.Definition.Contains("NOT DEFERRABLE", StringComparison.Ordinal)
            ? (original.Definition.Contains("INITIALLY DEFERRED", StringComparison.Ordinal) ? " DEFERRABLE INITIALLY DEFERRED" : " DEFERRABLE")
            : "";
}
