using ZeroDowntime.Engine.Backfill.Throttle;

namespace ZeroDowntime.Engine.Backfill;

/// <summary>How fast a backfill may go, and what it yields to.</summary>
public sealed record BackfillOptions
{
    /// <summary>
    /// The adaptive throttle (the default): the backfill measures the rest of the server's rate
    /// with and without it and works only the share of the time that costs the others little
    /// (docs/architecture.md, "The adaptive throttle"). An explicit pace switches it off: a
    /// BatchSize, a Delay, or Adaptive = false (Invoke-Backfill sets it for -TargetBatchTime).
    /// </summary>
    public bool Adaptive { get; init; } = true;

    /// <summary>The batch size adapts so that each batch (one short transaction) takes about this long.</summary>
    public TimeSpan TargetBatchTime { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>A fixed number of rows per batch instead of adapting to TargetBatchTime.</summary>
    public int? BatchSize { get; init; }

    /// <summary>A pause after every batch, to leave the server to the application.</summary>
    public TimeSpan Delay { get; init; } = TimeSpan.Zero;

    /// <summary>Pause while any replica's replay lag is above this (null: don't watch replicas).</summary>
    public TimeSpan? MaxReplicationLag { get; init; }

    /// <summary>The first batch's size when adapting.</summary>
    public int InitialBatchSize { get; init; } = 1000;

    public int MinBatchSize { get; init; } = 50;

    public int MaxBatchSize { get; init; } = 50_000;

    /// <summary>Stop after this many batches (for tests and for "a little now, more tonight"); null: run to the end.</summary>
    public int? MaxBatches { get; init; }

    // Operator controls, applied between batches by Backfill/Control/BatchGate.

    /// <summary>Wait before a batch while more than this many other sessions run a statement (see ServerLoad); null: no ceiling.</summary>
    public int? MaxLoad { get; init; }

    /// <summary>Stop at the first batch boundary after running this long (waits included); the checkpoint is kept.</summary>
    public TimeSpan? MaxDuration { get; init; }

    /// <summary>Stop at the first batch boundary at or after this time; the checkpoint is kept.</summary>
    public DateTimeOffset? StopAt { get; init; }

    /// <summary>Cancelled to stop after the batch in flight commits (SIGTERM, Ctrl+C in Invoke-Backfill), unlike the run's own token, which rolls that batch back.</summary>
    public CancellationToken StopAfterBatch { get; init; }

    /// <summary>
    /// The share of the other sessions' throughput, in percent, the adaptive throttle lets the
    /// backfill cost them (its harm limit; null: <see cref="ThrottleSettings.HarmLimit"/>, 6%).
    /// </summary>
    public int? MaxImpactPercent { get; init; }

    /// <summary>Whether the adaptive throttle paces this run (no explicit pace given).</summary>
    internal bool IsAdaptive => Adaptive && BatchSize is null && Delay == TimeSpan.Zero;

    /// <summary>The throttle's constants; tests and the bench shorten its windows.</summary>
    internal ThrottleSettings Throttle { get; init; } = ThrottleSettings.Default;

    /// <summary>The throttle's constants with the caller's <see cref="MaxImpactPercent"/>.</summary>
    internal ThrottleSettings ThrottleForRun => MaxImpactPercent is { } percent ? Throttle.WithHarmLimit(percent / 100.0) : Throttle;

    internal void Validate()
    {
        if (MaxLoad is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxLoad), MaxLoad, "MaxLoad cannot be negative.");
        }

        if (MaxImpactPercent is < 1 or > 50)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxImpactPercent), MaxImpactPercent, "MaxImpactPercent must be between 1 and 50.");
        }

        if (MaxImpactPercent is not null && !IsAdaptive)
        {
            throw new ArgumentException("MaxImpactPercent limits the adaptive throttle, which an explicit pace (TargetBatchTime with Adaptive = false, BatchSize, Delay) switches off.", nameof(MaxImpactPercent));
        }

        if (MaxDuration is { } duration && duration <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDuration), MaxDuration, "MaxDuration must be positive.");
        }

        if (TargetBatchTime <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(TargetBatchTime), TargetBatchTime, "TargetBatchTime must be positive.");
        }

        if (BatchSize is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be positive.");
        }

        if (Delay < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(Delay), Delay, "Delay cannot be negative.");
        }
    }
}
