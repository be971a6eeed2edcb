namespace ZeroDowntime.Engine.Catalog;

/// <summary>What pg_class.relkind says a relation is.</summary>
public enum RelationKind
{
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
    Sequence,
    Index,
    CompositeType,
    Other,
}

/// <summary>A relation and everything about it the operations plan from, read in one go.</summary>
public sealed record TableInfo
{
    public required uint Oid { get; init; }
    public required string Schema { get; init; }
    public required string Name { get; init; }
    public required RelationKind Kind { get; init; }

    /// <summary>True for a partition of a partitioned table (pg_class.relispartition).</summary>
    public required bool IsPartition { get; init; }

    public required string Owner { get; init; }

    /// <summary>pg_class.reltuples (-1 when never analyzed, then 0 here).</summary>
    public required long EstimatedRows { get; init; }

    public required bool RowSecurity { get; init; }
    public required bool ForceRowSecurity { get; init; }
    public string? Comment { get; init; }

    /// <summary>The view's reloptions (e.g. security_invoker=true) or the table's storage options.</summary>
    public IReadOnlyList<string> Options { get; init; } = Array.Empty<string>();

    public IReadOnlyList<ColumnInfo> Columns { get; init; } = Array.Empty<ColumnInfo>();
    public IReadOnlyList<ConstraintInfo> Constraints { get; init; } = Array.Empty<ConstraintInfo>();
    public IReadOnlyList<IndexInfo> Indexes { get; init; } = Array.Empty<IndexInfo>();
    public IReadOnlyList<TriggerInfo> Triggers { get; init; } = Array.Empty<TriggerInfo>();

    /// <summary>Views, materialized views and rules whose definition uses this relation.</summary>
    public IReadOnlyList<DependentObject> Dependents { get; init; } = Array.Empty<DependentObject>();

    /// <summary>Foreign keys in other tables (or this one) that reference this table.</summary>
    public IReadOnlyList<ConstraintInfo> ReferencedBy { get; init; } = Array.Empty<ConstraintInfo>();

    public IReadOnlyList<GrantInfo> Grants { get; init; } = Array.Empty<GrantInfo>();

    public string QualifiedName => Sql.Ident.Qualify(Schema, Name);

    public ConstraintInfo? PrimaryKey => Constraints.FirstOrDefault(c => c.Type == ConstraintType.PrimaryKey);

    public ColumnInfo? Column(string name) => Columns.FirstOrDefault(c => c.Name == name);

    public ColumnInfo ColumnByNumber(short attnum) => Columns.First(c => c.Number == attnum);
}

public sealed record ColumnInfo
{
    public required short Number { get; init; }
    public required string Name { get; init; }

    /// <summary>format_type(atttypid, atttypmod): the exact type with its modifier, e.g. character varying(20).</summary>
    public required string Type { get; init; }

    /// <summary>The quoted, qualified collation when it differs from the type's default, else null.</summary>
    public string? Collation { get; init; }

    public required bool NotNull { get; init; }

    /// <summary>pg_get_expr of the default, or null.</summary>
    public string? Default { get; init; }

    /// <summary>'a' GENERATED ALWAYS AS IDENTITY, 'd' BY DEFAULT, or '\0'.</summary>
    public char Identity { get; init; }

    /// <summary>'s' for a stored generated column, or '\0'.</summary>
    public char Generated { get; init; }

    public string? Comment { get; init; }

    /// <summary>attstattarget; -1 means the default.</summary>
    public int StatisticsTarget { get; init; } = -1;

    /// <summary>SET STORAGE's word (PLAIN, EXTERNAL, EXTENDED, MAIN) when it differs from the type's, else null.</summary>
    public string? Storage { get; init; }

    /// <summary>SET COMPRESSION's method (pglz, lz4) when one was set on the column, else null.</summary>
    public string? Compression { get; init; }

    /// <summary>attoptions, e.g. n_distinct=100 (as ALTER COLUMN ... SET (...) takes them).</summary>
    public IReadOnlyList<string> Options { get; init; } = Array.Empty<string>();

    public bool IsIdentity => Identity != '\0';

    public bool IsGenerated => Generated != '\0';
}

public enum ConstraintType
{
    PrimaryKey,
    Unique,
    ForeignKey,
    Check,
    Exclusion,
    NotNull,
    Trigger,
    Other,
}

public sealed record ConstraintInfo
{
    public required uint Oid { get; init; }
    public required string Name { get; init; }
    public required ConstraintType Type { get; init; }

    /// <summary>pg_get_constraintdef: e.g. "FOREIGN KEY (customer_id) REFERENCES customers(id) NOT VALID".</summary>
    public required string Definition { get; init; }

    public required bool Validated { get; init; }

    /// <summary>The table the constraint is on (for ReferencedBy entries, the referencing table).</summary>
    public required string TableSchema { get; init; }
    public required string TableName { get; init; }

    public IReadOnlyList<short> Columns { get; init; } = Array.Empty<short>();

    /// <summary>For a foreign key: the referenced table and columns.</summary>
    public uint? ReferencedTableOid { get; init; }
    public string? ReferencedTable { get; init; }
    public IReadOnlyList<short> ReferencedColumns { get; init; } = Array.Empty<short>();

    /// <summary>The index behind a primary key, unique or exclusion constraint.</summary>
    public string? IndexName { get; init; }
}

public sealed record IndexInfo
{
    public required uint Oid { get; init; }
    public required string Name { get; init; }

    /// <summary>pg_get_indexdef: the full CREATE INDEX statement.</summary>
    public required string Definition { get; init; }

    public required bool IsUnique { get; init; }
    public required bool IsPrimary { get; init; }

    /// <summary>False for an index left INVALID by a failed CREATE INDEX CONCURRENTLY.</summary>
    public required bool IsValid { get; init; }

    /// <summary>Every column the index uses: keys, INCLUDE, expressions and predicate (from pg_depend).</summary>
    public IReadOnlyList<short> Columns { get; init; } = Array.Empty<short>();

    /// <summary>The constraint the index backs (primary key, unique, exclusion), if any.</summary>
    public string? ConstraintName { get; init; }

    /// <summary>The key columns in index order (INCLUDE columns excluded); 0 stands for an expression.</summary>
    public IReadOnlyList<short> KeyColumns { get; init; } = Array.Empty<short>();

    public bool HasExpressions { get; init; }

    public bool HasPredicate { get; init; }

    /// <summary>The table's REPLICA IDENTITY USING INDEX (pg_index.indisreplident).</summary>
    public bool IsReplicaIdentity { get; init; }

    /// <summary>The table's CLUSTER mark (pg_index.indisclustered).</summary>
    public bool IsClustered { get; init; }

    /// <summary>UNIQUE NULLS NOT DISTINCT (PostgreSQL 15+).</summary>
    public bool NullsNotDistinct { get; init; }

    public string? Comment { get; init; }

    /// <summary>A unique index on plain columns with no predicate: usable as a row key.</summary>
    public bool IsPlainUnique => IsUnique && IsValid && !HasExpressions && !HasPredicate;
}

/// <summary>An extended statistics object (CREATE STATISTICS) on a table.</summary>
public sealed record StatisticsInfo
{
    public required uint Oid { get; init; }
    public required string Schema { get; init; }
    public required string Name { get; init; }

    /// <summary>Every column it uses, plain or inside an expression (from pg_depend).</summary>
    public IReadOnlyList<short> Columns { get; init; } = Array.Empty<short>();

    /// <summary>The kinds asked for (ndistinct, dependencies, mcv); empty for a single expression.</summary>
    public IReadOnlyList<string> Kinds { get; init; } = Array.Empty<string>();

    /// <summary>pg_get_statisticsobjdef_columns: what comes after ON, e.g. "a, b" or "(lower(a)), b".</summary>
    public required string Targets { get; init; }

    /// <summary>stxstattarget; -1 means the default.</summary>
    public int StatisticsTarget { get; init; } = -1;

    public string? Comment { get; init; }

    public string QualifiedName => Sql.Ident.Qualify(Schema, Name);
}

public sealed record TriggerInfo(string Name, string Definition, char Enabled, string FunctionSchema, string FunctionName);

/// <summary>A view, materialized view or rule that depends on a relation (and the columns it uses).</summary>
public sealed record DependentObject(string Schema, string Name, RelationKind Kind, IReadOnlyList<short> Columns)
{
    public string QualifiedName => Sql.Ident.Qualify(Schema, Name);
}

/// <summary>One privilege from the relation's ACL (or a column's, when Column is set); Grantee null means PUBLIC.</summary>
public sealed record GrantInfo(string? Grantee, string Privilege, bool Grantable, string? Column);

/// <summary>
/// An object that depends on a column: its catalog (pg_class, pg_constraint, pg_attrdef, pg_rewrite,
/// pg_trigger, pg_policy, ...), oid, description, and Detail: the relkind for pg_class, "own"/"other"
/// for pg_constraint and pg_attrdef. RelationSchema/Name are set for pg_class objects.
/// </summary>
public sealed record ColumnDependent(string Catalog, uint Oid, string Description, string Detail, string? RelationSchema, string? RelationName);
