namespace ZeroDowntime.Engine.Errors;

/// <summary>
/// Stable error ids (what scripts test FullyQualifiedErrorId against) that more than one place
/// raises or tests for. Ids used in one place only may still be written where they are raised.
/// </summary>
public static class ErrorIds
{
    /// <summary>A phase was asked for from a phase it does not follow.</summary>
    public const string PhaseOutOfOrder = "PhaseOutOfOrder";

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

    /// <summary>An object the module made outside the ledger (a version schema, a sync function) is owned by a role that is not trusted.</summary>
    public const string UntrustedObject = "UntrustedObject";

    /// <summary>The current role cannot alter the table (it is neither its owner nor a member of the owner role).</summary>
    public const string NotTableOwner = "NotTableOwner";
}
