namespace ZeroDowntime.Engine.Backfill.Control;

/// <summary>
/// What an operator asked of a running backfill from another session (Suspend-Backfill,
/// Resume-Backfill, Set-BackfillThrottle), kept on the migration's ledger row (backfill_control)
/// and read by the backfill between batches. A null setting leaves the run's own value.
/// </summary>
public sealed record BackfillControl
{
    public bool Paused { get; init; }

    /// <summary>Who paused it and when ("dba at 2026-12-01 03:02:11Z"), for the status line.</summary>
    public string? PausedBy { get; init; }

    public double? DelayMilliseconds { get; init; }

    public int? BatchSize { get; init; }

    public double? TargetBatchTimeMilliseconds { get; init; }

    public int? MaxLoad { get; init; }

    /// <summary>
    /// The run's options with the operator's retuning applied over them. A pace given by the
    /// operator (delay, batch size, target batch time) replaces the adaptive throttle, as the same
    /// parameters of Invoke-Backfill do: a DBA who sets -TargetBatchTime means that pace, not a
    /// throttle that keeps deciding over it.
    /// </summary>
    public BackfillOptions ApplyTo(BackfillOptions options) => options with
    {
        Adaptive = options.Adaptive && DelayMilliseconds is null && BatchSize is null && TargetBatchTimeMilliseconds is null,
        Delay = DelayMilliseconds is { } delay ? TimeSpan.FromMilliseconds(delay) : options.Delay,
        BatchSize = BatchSize ?? options.BatchSize,
        TargetBatchTime = TargetBatchTimeMilliseconds is { } target ? TimeSpan.FromMilliseconds(target) : options.TargetBatchTime,
        MaxLoad = MaxLoad ?? options.MaxLoad,
    };

    /// <summary>A new run starts from its own parameters: only a pause outlives it.</summary>
    public BackfillControl PauseOnly() => new() { Paused = Paused, PausedBy = PausedBy };
}

/// <summary>Live retuning of a running backfill (Set-BackfillThrottle): null leaves a setting as it is.</summary>
public sealed record BackfillRetune
{
    public TimeSpan? Delay { get; init; }

    public int? BatchSize { get; init; }

    public TimeSpan? TargetBatchTime { get; init; }

    public int? MaxLoad { get; init; }

    /// <summary>Drop every earlier retuning first: back to the running command's own parameters.</summary>
    public bool Reset { get; init; }

    internal BackfillControl ApplyTo(BackfillControl control)
    {
        var start = Reset ? control.PauseOnly() : control;
        return start with
        {
            DelayMilliseconds = Delay?.TotalMilliseconds ?? start.DelayMilliseconds,
            BatchSize = BatchSize ?? start.BatchSize,
            TargetBatchTimeMilliseconds = TargetBatchTime?.TotalMilliseconds ?? start.TargetBatchTimeMilliseconds,
            MaxLoad = MaxLoad ?? start.MaxLoad,
        };
    }
}
