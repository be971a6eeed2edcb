namespace ZeroDowntime.Engine.Errors;

/// <summary>
/// Every error id the engine raises: stable names that scripts test FullyQualifiedErrorId against
/// and that become the ErrorRecord's id. One place, so an id is never spelled two ways.
/// </summary>
public static class ErrorIds
{
    /// <summary>A phase was asked for from a phase it does not follow.</summary>
    public const string PhaseOutOfOrder = "PhaseOutOfOrder";

    /// <summary>A migration's tag is blank or longer than the ledger takes.</summary>
    public const string InvalidTag = "InvalidTag";

    /// <summary>The table already has a migration that is not finished.</summary>
    public const string MigrationAlreadyActive = "MigrationAlreadyActive";

    /// <summary>Another ZeroDowntime phase holds the table's phase lock.</summary>
    public const string MigrationPhaseRunning = "MigrationPhaseRunning";

    /// <summary>The session holding the phase lock ended while the phase ran; the phase stopped before its next commit.</summary>
    public const string PhaseLockLost = "PhaseLockLost";

    /// <summary>The copied column differs from the old one right before the contract would drop it.</summary>
    public const string ParityFailed = "ParityFailed";

    /// <summary>The server refused a statement for lack of a privilege (SQLSTATE 42501); the message names the privilege and object.</summary>
    public const string InsufficientPrivilege = "InsufficientPrivilege";

    /// <summary>The ledger's own schema was named as the target of an operation.</summary>
    public const string LedgerNotATarget = "LedgerNotATarget";

    /// <summary>An expand failed and the table could not be put back as it was automatically; Undo-Migration finishes it.</summary>
    public const string ExpandFailedUndoNeeded = "ExpandFailedUndoNeeded";

    /// <summary>The ledger schema, or something in or on it, is owned by or writable for a role that is not trusted.</summary>
    public const string LedgerNotTrusted = "LedgerNotTrusted";

    /// <summary>The ledger does not exist and the current role may not be the one to create it.</summary>
    public const string LedgerCreationRefused = "LedgerCreationRefused";

    /// <summary>The ledger is of an older version than the module and the current role may not upgrade it.</summary>
    public const string LedgerOutdated = "LedgerOutdated";

    /// <summary>An object the module made outside the ledger (a version schema, a sync function) is owned by a role that is not trusted.</summary>
    public const string UntrustedObject = "UntrustedObject";

    /// <summary>The current role cannot alter the table (it is neither its owner nor a member of the owner role).</summary>
    public const string NotTableOwner = "NotTableOwner";

    /// <summary>The migration's table no longer exists.</summary>
    public const string TableGone = "TableGone";

    /// <summary>A name the operation would create is already used in the schema.</summary>
    public const string NameTaken = "NameTaken";

    /// <summary>The server refused a user-written SQL fragment (type, default, expression, statement).</summary>
    public const string InvalidSql = "InvalidSql";

    /// <summary>The named column does not exist on the table.</summary>
    public const string ColumnNotFound = "ColumnNotFound";

    /// <summary>A name is empty, malformed or contains text the generated SQL cannot hold.</summary>
    public const string InvalidIdentifier = "InvalidIdentifier";

    /// <summary>The table was renamed outside ZeroDowntime while a migration was active.</summary>
    public const string TableRenamedElsewhere = "TableRenamedElsewhere";

    /// <summary>The named table does not exist.</summary>
    public const string TableNotFound = "TableNotFound";

    /// <summary>The new name equals the current one.</summary>
    public const string SameName = "SameName";

    /// <summary>The named relation is not an ordinary table the operation supports.</summary>
    public const string NotATable = "NotATable";

    /// <summary>A foreign key request names columns that do not match the referenced key.</summary>
    public const string IncompleteForeignKey = "IncompleteForeignKey";

    /// <summary>A column of the requested name already exists.</summary>
    public const string ColumnExists = "ColumnExists";

    /// <summary>The table's definition changed outside ZeroDowntime while a migration was active.</summary>
    public const string TableChangedElsewhere = "TableChangedElsewhere";

    /// <summary>The plan made now differs from the one shown (-WhatIf / -Confirm); nothing was run.</summary>
    public const string PlanChanged = "PlanChanged";

    /// <summary>Parity was asked of a migration that copies no column.</summary>
    public const string NotAColumnCopy = "NotAColumnCopy";

    /// <summary>The table has no key the backfill can walk in batches.</summary>
    public const string NoBatchKey = "NoBatchKey";

    /// <summary>A step could not get its lock within LockRetryTimeout; the blockers are named.</summary>
    public const string LockRetryTimeoutExceeded = "LockRetryTimeoutExceeded";

    /// <summary>Existing rows violate the constraint being added; they are counted.</summary>
    public const string ConstraintViolated = "ConstraintViolated";

    /// <summary>A column the migration relies on no longer exists.</summary>
    public const string ColumnGone = "ColumnGone";

    /// <summary>A dependent of the column cannot be carried over to a copy.</summary>
    public const string ColumnCannotBeCopied = "ColumnCannotBeCopied";

    /// <summary>The version schema lacks the view of the table.</summary>
    public const string VersionViewMissing = "VersionViewMissing";

    /// <summary>No version schema of that name exists.</summary>
    public const string VersionNotFound = "VersionNotFound";

    /// <summary>The ledger row names an operation this version of the module does not know.</summary>
    public const string UnknownOperation = "UnknownOperation";

    /// <summary>The migration's table is not the one named.</summary>
    public const string TableMismatch = "TableMismatch";

    /// <summary>The requested strategy is not available on this server or for this table.</summary>
    public const string StrategyNotAvailable = "StrategyNotAvailable";

    /// <summary>The column already has the requested type.</summary>
    public const string SameType = "SameType";

    /// <summary>Rows that existed before Add-Column have not been given their value yet.</summary>
    public const string RowsPending = "RowsPending";

    /// <summary>The server would rewrite the table for this change whatever the plan.</summary>
    public const string RewriteUnavoidable = "RewriteUnavoidable";

    /// <summary>The table a raw DDL statement changes could not be read from it; -Table is needed.</summary>
    public const string RawDdlNeedsTable = "RawDdlNeedsTable";

    /// <summary>A primary key's columns must be NOT NULL first (Set-ColumnNotNull).</summary>
    public const string PrimaryKeyNeedsNotNull = "PrimaryKeyNeedsNotNull";

    /// <summary>The table already has a primary key.</summary>
    public const string PrimaryKeyExists = "PrimaryKeyExists";

    /// <summary>Another session moved the migration to another phase meanwhile.</summary>
    public const string PhaseChangedConcurrently = "PhaseChangedConcurrently";

    /// <summary>A NOT NULL column added to a table with rows needs a default.</summary>
    public const string NotNullNeedsDefault = "NotNullNeedsDefault";

    /// <summary>An index or key request names no column or expression.</summary>
    public const string NoKeyColumns = "NoKeyColumns";

    /// <summary>The table has no index key the operation needs.</summary>
    public const string NoIndexKey = "NoIndexKey";

    /// <summary>A check constraint request has no expression.</summary>
    public const string NoCheckExpression = "NoCheckExpression";

    /// <summary>The migration has nothing to backfill.</summary>
    public const string NoBackfillNeeded = "NoBackfillNeeded";

    /// <summary>No migration of that id is in the ledger.</summary>
    public const string MigrationNotFound = "MigrationNotFound";

    /// <summary>The name of Add-Column's pending-row marker is already used.</summary>
    public const string MarkerNameTaken = "MarkerNameTaken";

    /// <summary>The version schema exists but is not one of ours or is not usable.</summary>
    public const string InvalidVersionSchema = "InvalidVersionSchema";

    /// <summary>A value cannot be written as a SQL literal.</summary>
    public const string InvalidLiteral = "InvalidLiteral";

    /// <summary>The named index does not exist.</summary>
    public const string IndexNotFound = "IndexNotFound";

    /// <summary>An index build ended with an INVALID index.</summary>
    public const string IndexInvalid = "IndexInvalid";

    /// <summary>The index enforces a constraint, is the replica identity, or is a partition of a partitioned index.</summary>
    public const string IndexInUse = "IndexInUse";

    /// <summary>A name is longer than PostgreSQL's 63 bytes, which it would silently truncate.</summary>
    public const string IdentifierTooLong = "IdentifierTooLong";

    /// <summary>The default given evaluates to NULL.</summary>
    public const string DefaultIsNull = "DefaultIsNull";

    /// <summary>The compatibility view is still used by other objects.</summary>
    public const string CompatibilityViewInUse = "CompatibilityViewInUse";

    /// <summary>Foreign keys of other tables reference the column; -Cascade takes them along.</summary>
    public const string ColumnReferenced = "ColumnReferenced";

    /// <summary>The column was already renamed in this version schema.</summary>
    public const string ColumnAlreadyRenamed = "ColumnAlreadyRenamed";

    /// <summary>The backfill's key changed since its checkpoint was written.</summary>
    public const string BackfillKeyChanged = "BackfillKeyChanged";

    /// <summary>The column is already NOT NULL.</summary>
    public const string AlreadyNotNull = "AlreadyNotNull";

    /// <summary>The connection string (or URI) cannot be read; nothing was tried.</summary>
    public const string InvalidConnectionString = "InvalidConnectionString";

    /// <summary>The server refused the user name or password.</summary>
    public const string AuthenticationFailed = "AuthenticationFailed";

    /// <summary>The server has no database of that name.</summary>
    public const string DatabaseNotFound = "DatabaseNotFound";

    /// <summary>The server could not be reached (host, port, network, TLS).</summary>
    public const string ConnectionFailed = "ConnectionFailed";

    /// <summary>Test-ColumnParity found rows that differ (or are not filled yet): the check the caller asked for failed.</summary>
    public const string NotInParity = "NotInParity";

    /// <summary>Invoke-SafeDdl did not run a piped statement because an earlier one of the same pipeline failed.</summary>
    public const string SkippedAfterFailure = "SkippedAfterFailure";

    /// <summary>A unique index on a partitioned table lacks a partition key column (or the key has an expression).</summary>
    public const string UniqueIndexNeedsPartitionKey = "UniqueIndexNeedsPartitionKey";

    /// <summary>A foreign key on a partitioned table one of whose partitions is a foreign table (which cannot have one).</summary>
    public const string ForeignTablePartition = "ForeignTablePartition";

    /// <summary>-ExpectedPlan: the SQL planned now is not in the approved plan file (or the file has no plan for this phase); nothing ran.</summary>
    public const string PlanNotApproved = "PlanNotApproved";

    /// <summary>-PlanPath: the plan file could not be written (a folder that cannot be made, no permission); nothing ran.</summary>
    public const string PlanNotWritten = "PlanNotWritten";

    /// <summary>Remove-MigrationHistory was asked to remove a migration that is not finished (completed, undone or failed).</summary>
    public const string MigrationNotFinished = "MigrationNotFinished";

    /// <summary>A column copy's contract found a partition without the new column or with its sync trigger missing or disabled.</summary>
    public const string PartitionNotReady = "PartitionNotReady";
}
