using System.Text.Json.Serialization;

namespace ZeroDowntime.Engine.Backfill.Control;

/// <summary>What a backfill is doing, as its heartbeat says (by name in the ledger's JSON, for a DBA's psql).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<BackfillState>))]
public enum BackfillState
{
    /// <summary>Filling batches.</summary>
    Running,

    /// <summary>Waiting because an operator paused it (Suspend-Backfill).</summary>
    Paused,

    /// <summary>Waiting for the server or its replicas (-MaxLoad, -MaxReplicationLag), or running below full speed because the adaptive throttle found the batches hurt the other sessions.</summary>
    Throttled,

    /// <summary>Stopped before the end (time box, -MaxBatches, SIGTERM, Ctrl+C, an error); the checkpoint is kept.</summary>
    Stopped,

    /// <summary>Every row is filled.</summary>
    Finished,
}

/// <summary>What every stopped backfill tells its user to do next, worded once.</summary>
internal static class BackfillResume
{
    public static string Advice(long migrationId) => $"the checkpoint is kept: run Invoke-Backfill -Id {migrationId} again to continue";
}

/// <summary>Why a backfill run stopped before the end of the table.</summary>
public enum BackfillStopReason
{
    MaxBatches,

    /// <summary>-MaxDuration ran out or -StopAt was reached.</summary>
    TimeBox,

    /// <summary>SIGTERM (or a caller's request through BackfillOptions.StopAfterBatch).</summary>
    StopRequested,
}

/// <summary>
/// The heartbeat a running backfill writes on its ledger row (backfill_status) between batches, so
/// that Get-Migration in another session shows whether it runs, waits and why, its rate and ETA.
/// </summary>
public sealed record BackfillStatus
{
    public BackfillState State { get; init; }

    /// <summary>Why it waits or stopped, in words (the same line the verbose stream shows).</summary>
    public string? Reason { get; init; }

    public double RowsPerSecond { get; init; }

    /// <summary>Estimated time left at the current rate, when the rate and the row estimate allow one.</summary>
    public double? EtaSeconds { get; init; }

    /// <summary>When the last batch committed, and how long it took.</summary>
    public DateTimeOffset? LastBatchAt { get; init; }

    public double? LastBatchMilliseconds { get; init; }

    public int? BatchSize { get; init; }

    /// <summary>When this heartbeat was written (a stale one means the process is gone).</summary>
    public DateTimeOffset At { get; init; }

    public TimeSpan? Eta => EtaSeconds is { } s ? TimeSpan.FromSeconds(s) : null;

    public override string ToString()
        => State + (Reason is null ? "" : $": {Reason}") + (State is BackfillState.Running or BackfillState.Throttled && RowsPerSecond > 0 ? $" ({RowsPerSecond:N0} rows/s{(Eta is { } eta ? $", ETA {eta:hh\\:mm\\:ss}" : "")})" : "");
}
