using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine;

/// <summary>
/// A migration as the ledger records it; what every cmdlet outputs and the next one takes from
/// the pipeline (by the property names Id and Connection). It never holds a password: Connection
/// keeps it privately so the pipeline can reconnect, and shows only user, host, port and database.
/// </summary>
public sealed class Migration
{
    public long Id { get; init; }

    /// <summary>RenameTable, RenameColumn, AddColumn, ...</summary>
    public string Operation { get; init; } = "";

    /// <summary>The database the migration lives in (its ledger's database), as Connection names it.</summary>
    public string? Database => Connection?.Database;

    public string Schema { get; init; } = "";

    /// <summary>The table's name when the migration started.</summary>
    public string Table { get; init; } = "";

    /// <summary>The column the migration is about, if any.</summary>
    public string? Column { get; init; }

    /// <summary>The new name of the table or column, if the operation renames.</summary>
    public string? NewName { get; init; }

    /// <summary>The caller's label (-Tag, e.g. "release-42") that a later stage finds the migration by; null if none was given.</summary>
    public string? Tag { get; init; }

    /// <summary>Copy or View.</summary>
    public string Strategy { get; init; } = "";

    public MigrationPhase Phase { get; init; }

    public bool IsActive => !Phase.IsFinal();

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>current_user, application_name and client address of the session that created it.</summary>
    public string CreatedBy { get; init; } = "";

    public DateTimeOffset UpdatedAt { get; init; }

    public string UpdatedBy { get; init; } = "";

    /// <summary>Rows the backfill expects (planner estimate or exact key range count), if a backfill applies.</summary>
    public long? RowsEstimated { get; init; }

    public long RowsBackfilled { get; init; }

    /// <summary>The backfill's wall-clock time over all its runs, pauses included (throttle, -Delay, replica waits).</summary>
    public TimeSpan? BackfillDuration { get; init; }

    /// <summary>Rows per second of wall-clock time (pauses included): the rate to plan a window with.</summary>
    public double? BackfillRowsPerSecond { get; init; }

    /// <summary>
    /// The backfill's last heartbeat: running, paused, throttled (and why), stopped (and why) or
    /// finished, with its rate, ETA and last batch. Null before any backfill ran.
    /// </summary>
    public Backfill.Control.BackfillStatus? Backfill { get; init; }

    /// <summary>What operators asked of the backfill (Suspend-Backfill, Set-BackfillThrottle); null: nothing.</summary>
    public Backfill.Control.BackfillControl? BackfillControl { get; init; }

    /// <summary>The part of BackfillDuration the backfill spent paused (throttle sleeps and probes, -Delay, waits), in its current walk.</summary>
    public TimeSpan? BackfillPausedDuration { get; init; }

    public DateTimeOffset? ParityCheckedAt { get; init; }

    public long? ParityMismatches { get; init; }

    public string? LastError { get; init; }

    /// <summary>Operation-specific facts (view names, search_path settings, ...), for display.</summary>
    public IReadOnlyDictionary<string, string> Details { get; init; } = new Dictionary<string, string>();

    /// <summary>The ledger events (phase changes with the SQL that ran), when asked for.</summary>
    public IReadOnlyList<MigrationEvent> Events { get; init; } = Array.Empty<MigrationEvent>();

    /// <summary>Where the migration lives; lets the next cmdlet in a pipeline reconnect.</summary>
    public ConnectionTarget? Connection { get; init; }

    public override string ToString() => $"Migration {Id}: {Operation} {Schema}.{Table} ({Phase})";
}

/// <summary>One ledger event: a phase change (or a failure) and the SQL it ran.</summary>
public sealed record MigrationEvent(
    long Id,
    long MigrationId,
    DateTimeOffset At,
    string Action,
    string? FromPhase,
    string ToPhase,
    string By,
    string? Sql,
    string? Message);
