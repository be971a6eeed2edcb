using System.Text.Json.Serialization;

namespace ZeroDowntime.Engine.Backfill;

/// <summary>
/// Where a backfill stands, committed in the same transaction as each batch so that nothing is
/// lost or done twice when the process, the connection or the backend dies. Keys are kept as text.
/// </summary>
internal sealed record BackfillCheckpoint
{
    /// <summary>The table walked (a migration may backfill several one after the other); null in checkpoints of earlier versions: the migration's own table.</summary>
    [JsonPropertyName("table")]
    public uint? TableOid { get; init; }

    /// <summary>
    /// The tables (leaf partitions of a partitioned table, or the tables of a -Cascade) this walk has
    /// finished before <see cref="TableOid"/>. Kept by oid rather than by position, so a partition
    /// created or attached while the backfill was stopped is walked too, wherever its name sorts;
    /// null in checkpoints of earlier versions: the tables before <see cref="TableOid"/> in the walk's order.
    /// </summary>
    [JsonPropertyName("done")]
    public IReadOnlyList<uint>? Done { get; init; }

    /// <summary>The batch key's columns ("ctid" walk when empty), to refuse resuming with a different key.</summary>
    [JsonPropertyName("key")]
    public IReadOnlyList<string> KeyColumns { get; init; } = Array.Empty<string>();

    /// <summary>The last key of the table when the backfill started: rows above it were born synced.</summary>
    [JsonPropertyName("upper")]
    public IReadOnlyList<string>? Upper { get; init; }

    /// <summary>The last key done; null before the first batch.</summary>
    [JsonPropertyName("last")]
    public IReadOnlyList<string>? Last { get; init; }

    /// <summary>ctid walk: the next page to do and the table's page count at the start.</summary>
    [JsonPropertyName("nextPage")]
    public long NextPage { get; init; }

    [JsonPropertyName("upperPage")]
    public long UpperPage { get; init; }

    /// <summary>Rows skipped because the application held their lock; retried after the walk.</summary>
    [JsonPropertyName("deferred")]
    public IReadOnlyList<IReadOnlyList<string>> Deferred { get; init; } = Array.Empty<IReadOnlyList<string>>();

    /// <summary>True once the walk reached the upper bound (only deferred rows may remain).</summary>
    [JsonPropertyName("walked")]
    public bool Walked { get; init; }

    /// <summary>
    /// ctid walk confirmed by a clean pass: which pass over the table this is (0: the first walk),
    /// the rows it filled (deferred retries included), and the table's filenode when it started
    /// (a rewrite such as VACUUM FULL or CLUSTER moves every row, so a pass it overlapped proves nothing).
    /// </summary>
    [JsonPropertyName("pass")]
    public int Pass { get; init; }

    [JsonPropertyName("passFilled")]
    public long PassFilled { get; init; }

    [JsonPropertyName("filenode")]
    public long Filenode { get; init; }

    /// <summary>
    /// The batch size the last batch ran with, so a run that resumes (after MaxBatches, a time box,
    /// a crash) starts at the size the table and the server had led to, not at the initial one.
    /// </summary>
    [JsonPropertyName("batchSize")]
    public int? BatchSize { get; init; }

    /// <summary>Time the backfill spent paused (delays, throttle sleeps and probes, waits for locked rows), all runs of this walk; part of backfill_seconds.</summary>
    [JsonPropertyName("pausedSeconds")]
    public double PausedSeconds { get; init; }
}
