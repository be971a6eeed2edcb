using System.Management.Automation;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// What to do next after each engine error: the error record's RecommendedAction, which
/// PowerShell shows with Get-Error and scripts can log. One line per id; an id without its own
/// line gets its category's advice, so a new error id never leaves RecommendedAction empty.
/// </summary>
internal static class ErrorAdvice
{
    private const string NothingChangedFix = "Nothing was changed. Correct the command as the message says and run it again.";

    private static readonly Dictionary<string, string> ById = new(StringComparer.Ordinal)
    {
        [ErrorIds.InvalidConnectionString] = "Fix the connection string or URI (quote or percent-encode a password containing ; ? @ / &), or leave it out and set PGHOST, PGPORT, PGDATABASE and PGUSER.",
        [ErrorIds.AuthenticationFailed] = "Check the user name and password (-Credential, PGPASSWORD, ~/.pgpass) and the server's pg_hba.conf; nothing was changed.",
        [ErrorIds.DatabaseNotFound] = "Check the database name (-ConnectionString Database=..., PGDATABASE); nothing was changed.",
        [ErrorIds.ConnectionFailed] = "Check host, port, network and TLS settings (psql with the same settings shows the same failure); nothing was changed. Run the command again once the server is reachable: every phase resumes from what the ledger recorded.",
        [ErrorIds.LockRetryTimeoutExceeded] = "Nothing was changed. Wait for the sessions named in the message to finish (or end them with pg_terminate_backend), then run the same command again; or give it longer with -LockRetryTimeout.",
        [ErrorIds.MigrationPhaseRunning] = "Another ZeroDowntime command is running a phase of this table's migration. Wait for it to end (Get-Migration shows its phase), then run the command again.",
        [ErrorIds.MigrationAlreadyActive] = "Finish the table's active migration first (Get-Migration -Table <table> -Active, then Complete-Contract or Undo-Migration), or run the same request again to get the active migration back.",
        [ErrorIds.PhaseOutOfOrder] = "Run the phases in order: New-* (expand), Invoke-Backfill, Test-ColumnParity, Complete-Contract. Get-Migration -Id <id> shows the phase the migration is in.",
        [ErrorIds.ParityFailed] = "Nothing was dropped. Run Invoke-Backfill -Id <id> to fix the rows that differ, then Test-ColumnParity and Complete-Contract again; or Undo-Migration.",
        [ErrorIds.NotInParity] = "Run Invoke-Backfill -Id <id> to fix the rows that differ, then Test-ColumnParity again; Complete-Contract refuses until there are none.",
        [ErrorIds.RowsPending] = "Run Invoke-Backfill -Id <id> to fill the remaining rows, then Complete-Contract again.",
        [ErrorIds.PhaseLockLost] = "The phase stopped before its next commit; nothing half-done is kept. Run the same command again to resume.",
        [ErrorIds.ExpandFailedUndoNeeded] = "Run Undo-Migration -Id <id> to put the table back as it was, then find the cause in the message and start again.",
        [ErrorIds.PlanChanged] = "The table changed since the plan was shown; nothing was run. Run the command again (with -WhatIf first to review the new plan).",
        [ErrorIds.PhaseChangedConcurrently] = "Another session moved the migration on meanwhile. Get-Migration -Id <id> shows where it is; run the next phase from there.",
        [ErrorIds.MigrationNotFound] = "Check the id: Get-Migration (with -Table, -Tag or -Active) lists the migrations of this database's ledger.",
        [ErrorIds.LedgerNotTrusted] = "Have a superuser drop, REVOKE or ALTER ... OWNER TO the database owner what the message lists, or use another -LedgerSchema; nothing was changed.",
        [ErrorIds.LedgerCreationRefused] = "Have the database owner or a superuser run the first ZeroDowntime command in this database (it creates the ledger); nothing was changed.",
        [ErrorIds.NotTableOwner] = "Run the command as the table's owner (or a member of its owner role); nothing was changed.",
        [ErrorIds.InsufficientPrivilege] = "Grant the privilege the message names, or run as a role that has it; then run the command again.",
        [ErrorIds.ConstraintViolated] = "Nothing was kept. Fix the rows the message counts (orphans or rows failing the check), then run the command again.",
        [ErrorIds.IndexInvalid] = "The INVALID index was dropped. Find the cause in the server log (a deadlock, a cancelled build), then run the command again.",
        [ErrorIds.TableGone] = "The migration's table no longer exists. Undo-Migration -Id <id> clears the migration from the ledger's active list.",
        [ErrorIds.TableRenamedElsewhere] = "Rename the table back, or Undo-Migration -Id <id>; ZeroDowntime will not guess which name is right.",
        [ErrorIds.TableChangedElsewhere] = "Put the table's definition back as the message says, or Undo-Migration -Id <id>.",
        [ErrorIds.ColumnGone] = "The column the migration relies on was dropped outside ZeroDowntime; Undo-Migration -Id <id> clears the migration.",
        [ErrorIds.BackfillKeyChanged] = "The table's key changed since the checkpoint; Undo-Migration -Id <id> and start the migration again.",
        [ErrorIds.NoBackfillNeeded] = "Nothing to do: this migration has no rows to fill. Go on with the next phase (Test-ColumnParity or Complete-Contract).",
        [ErrorIds.PlanNotApproved] = "Nothing was run. Review what changed: plan again with -PlanOnly -PlanPath <file>, have that file approved, and run with -ExpectedPlan <file>.",
        [ErrorIds.PartitionNotReady] = "Nothing was changed. Make the partition named ready: enable its sync trigger again (ALTER TABLE ... ENABLE TRIGGER) or add the new column to a table attached without it, run Invoke-Backfill and Test-ColumnParity again, then Complete-Contract.",
        [ErrorIds.ForeignTablePartition] = "Nothing was changed. A foreign table's rows live on another server, which this migration cannot backfill: detach that partition for the migration, or change it by hand on its server.",
        [ErrorIds.MigrationNotFinished] = "Nothing was removed. Finish the migration first (Complete-Contract or Undo-Migration); only completed, undone or failed migrations leave the ledger.",
        [ErrorIds.SkippedAfterFailure] = "Fix the statement that failed before this one, then run the remaining statements again.",
    };

    /// <summary>The advice for an error id, falling back on its category's.</summary>
    public static string For(string errorId, ErrorCategory category)
        => ById.TryGetValue(errorId, out var advice) ? advice : ForCategory(category);

    private static string ForCategory(ErrorCategory category) => category switch
    {
        ErrorCategory.ObjectNotFound => "Check the name or id (names are exact and case-sensitive; -Schema defaults to public); nothing was changed.",
        ErrorCategory.ResourceExists => "Pick another name, or drop what already uses it; nothing was changed.",
        ErrorCategory.InvalidArgument => NothingChangedFix,
        ErrorCategory.InvalidData => NothingChangedFix,
        ErrorCategory.PermissionDenied => "Run the command as a role with the privileges the message names; nothing was changed.",
        ErrorCategory.ResourceBusy => "Wait for the other session or command the message names to finish, then run the command again.",
        ErrorCategory.ConnectionError or ErrorCategory.OperationTimeout => "Run the command again once the server is reachable: every phase resumes from what the ledger recorded.",
        ErrorCategory.OperationStopped => "Run the same command again: it resumes from what the ledger recorded.",
        _ => "Run the command again with -Verbose for detail; Get-Migration shows what the ledger recorded. Committed steps are kept and a phase run again resumes from them.",
    };
}
