namespace ZeroDowntime.Engine.Planning;

/// <summary>
/// Where a migration stands. Expanding/Contracting/Undoing are recorded while the DDL of that
/// phase runs, so a crash in the middle is visible in the ledger and can be undone.
/// </summary>
public enum MigrationPhase
{
    Expanding,
    Expanded,
    Backfilling,
    Backfilled,
    Verified,
    Contracting,
    Completed,
    Undoing,
    Undone,
    Failed,
}

public static class MigrationPhases
{
    /// <summary>Phases after which the migration no longer holds its table.</summary>
    public static bool IsFinal(this MigrationPhase phase)
        => phase is MigrationPhase.Completed or MigrationPhase.Undone or MigrationPhase.Failed;

    /// <summary>The ledger's spelling (lower case), also used in the partial unique index.</summary>
    public static string ToLedgerName(this MigrationPhase phase) => phase.ToString().ToLowerInvariant();

    public static MigrationPhase FromLedgerName(string name) => Enum.Parse<MigrationPhase>(name, ignoreCase: true);
}
