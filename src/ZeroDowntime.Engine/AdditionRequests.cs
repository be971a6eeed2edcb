namespace ZeroDowntime.Engine;

/// <summary>
/// Add a column, with a default and NOT NULL if asked, without a table rewrite: instantly when the
/// server can (a non-volatile default, PostgreSQL 11+), else nullable with its default and a backfill.
/// </summary>
/// <param name="Schema">The table's schema.</param>
/// <param name="Table">The table, by exact name.</param>
/// <param name="Column">The new column's name.</param>
/// <param name="Type">The column's type as SQL, e.g. "varchar(20)" (checked by the server).</param>
/// <param name="Default">The default as an SQL expression, e.g. "'pending'" or "gen_random_uuid()"; null for none.</param>
/// <param name="NotNull">Whether the column is NOT NULL (needs a default).</param>
public sealed record AddColumnRequest(string Schema, string Table, string Column, string Type, string? Default = null, bool NotNull = false) : MigrationRequest;

/// <summary>Make an existing column NOT NULL through a validated check instead of a locked scan.</summary>
public sealed record SetColumnNotNullRequest(string Schema, string Table, string Column) : MigrationRequest;

/// <summary>Create an index with CREATE INDEX CONCURRENTLY and make sure it is valid.</summary>
public sealed record CreateIndexRequest(string Schema, string Table) : MigrationRequest
{
    /// <summary>The index's name; derived from the table and columns when null.</summary>
    public string? Name { get; init; }

    /// <summary>Key columns, by exact name, first in the key.</summary>
    public IReadOnlyList<string> Columns { get; init; } = Array.Empty<string>();

    /// <summary>Key expressions as SQL, e.g. "lower(email)", after the columns in the key.</summary>
    public IReadOnlyList<string> Expressions { get; init; } = Array.Empty<string>();

    /// <summary>Non-key columns stored in the index (INCLUDE), by exact name.</summary>
    public IReadOnlyList<string> Include { get; init; } = Array.Empty<string>();

    /// <summary>The predicate of a partial index as SQL, e.g. "deleted_at IS NULL"; null for none.</summary>
    public string? Where { get; init; }

    /// <summary>The access method (btree, hash, gin, gist, brin, spgist, ...); null for the default (btree).</summary>
    public string? Method { get; init; }

    public bool Unique { get; init; }

    /// <summary>
    /// Like CREATE INDEX IF NOT EXISTS: when an index of this name already exists on the table,
    /// nothing is run (its definition is reported, not compared) and its ledger record, if any, is returned.
    /// </summary>
    public bool IfNotExists { get; init; }
}

/// <summary>Drop an index with DROP INDEX CONCURRENTLY.</summary>
public sealed record DropIndexRequest(string Schema, string Name) : MigrationRequest
{
    /// <summary>Like DROP INDEX IF EXISTS: when there is no index of this name, nothing is run and nothing is an error.</summary>
    public bool IfExists { get; init; }
}

/// <summary>The kinds of constraint <see cref="AddConstraintRequest"/> adds.</summary>
public enum ConstraintKind
{
    /// <summary>CHECK (expression): added NOT VALID, then validated in its own transaction.</summary>
    Check,

    /// <summary>FOREIGN KEY: added NOT VALID, then validated in its own transaction.</summary>
    ForeignKey,

    /// <summary>UNIQUE: a unique index built concurrently, then attached with ADD CONSTRAINT ... USING INDEX.</summary>
    Unique,

    /// <summary>PRIMARY KEY: like Unique; the columns must already be NOT NULL.</summary>
    PrimaryKey,
}

/// <summary>What a foreign key does when the referenced row is deleted or its key updated.</summary>
public enum ForeignKeyAction
{
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

/// <summary>Add a constraint without holding a lock on the table while existing rows are checked.</summary>
public sealed record AddConstraintRequest(string Schema, string Table, ConstraintKind Kind) : MigrationRequest
{
    /// <summary>The constraint's name; derived like PostgreSQL's own when null.</summary>
    public string? Name { get; init; }

    /// <summary>The constrained columns (foreign key, unique, primary key), by exact name.</summary>
    public IReadOnlyList<string> Columns { get; init; } = Array.Empty<string>();

    /// <summary>The CHECK expression as SQL, e.g. "qty > 0".</summary>
    public string? Check { get; init; }

    /// <summary>Foreign key: the referenced table's schema; the table's own schema when null.</summary>
    public string? ReferencedSchema { get; init; }

    public string? ReferencedTable { get; init; }

    /// <summary>Foreign key: the referenced columns; the referenced table's primary key when empty.</summary>
    public IReadOnlyList<string> ReferencedColumns { get; init; } = Array.Empty<string>();

    public ForeignKeyAction OnDelete { get; init; } = ForeignKeyAction.NoAction;

    public ForeignKeyAction OnUpdate { get; init; } = ForeignKeyAction.NoAction;
}

/// <summary>
/// Run one DDL statement the module has no operation for, through the lock-safe executor. The
/// table is found from the statement (ALTER TABLE, CREATE/DROP INDEX, ...) or given explicitly.
/// </summary>
public sealed record SafeDdlRequest(string Sql) : MigrationRequest
{
    /// <summary>The schema of <see cref="Table"/>; "public" when null.</summary>
    public string? Schema { get; init; }

    /// <summary>The table the statement changes, when it cannot be told from the statement.</summary>
    public string? Table { get; init; }
}
