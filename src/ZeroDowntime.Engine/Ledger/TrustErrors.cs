namespace ZeroDowntime.Engine.Ledger;

/// <summary>The error ids of the trust checks (ledger, version schemas, trigger functions, table ownership).</summary>
internal static class TrustErrors
{
    /// <summary>The ledger schema, or something in or on it, is owned by or writable for a role that is not trusted.</summary>
    internal const string LedgerNotTrusted = "LedgerNotTrusted";

    /// <summary>The ledger does not exist and the current role may not be the one to create it.</summary>
    internal const string LedgerCreationRefused = "LedgerCreationRefused";

    /// <summary>An object the module made outside the ledger (a version schema, a sync function) is owned by a role that is not trusted.</summary>
    internal const string UntrustedObject = "UntrustedObject";

    /// <summary>The current role cannot alter the table (it is neither its owner nor a member of the owner role).</summary>
    internal const string NotTableOwner = "NotTableOwner";
}
