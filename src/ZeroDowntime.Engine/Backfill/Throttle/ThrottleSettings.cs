namespace ZeroDowntime.Engine.Backfill.Throttle;

/// <summary>
/// The adaptive throttle's constants (see docs/architecture.md, "The adaptive throttle", for why
/// each value). Internal: the public knobs are Invoke-Backfill's overrides; tests and the bench
/// shorten the windows or lower <see cref="MinRows"/>.
/// </summary>
internal sealed record ThrottleSettings
{
    public static readonly ThrottleSettings Default = new();

    /// <summary>Below this many rows to fill, the backfill is over before a measurement could say anything: no throttle.</summary>
    public long MinRows { get; init; } = 100_000;

    /// <summary>How long the backfill works between two looks at the others' rate.</summary>
    public TimeSpan WorkWindow { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Discarded at the start of every window: backends publish their counters only about once a
    /// second (PostgreSQL 15+; 0.5 s through the stats collector before), so the first second of a
    /// window still counts work done under the previous regime.
    /// </summary>
    public TimeSpan Settle { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a probe pauses the backfill (after <see cref="Settle"/>) to see the others' rate without it.</summary>
    public TimeSpan ProbeWindow { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How often counters are read inside a window; the rate is the least-squares slope of the reads.</summary>
    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The others losing more than this share of their rate while the backfill works is harm: back off.</summary>
    public double HarmLimit { get; init; } = 0.06;

    /// <summary>
    /// A back-off needs the loss to stand this many standard errors above zero (the errors from
    /// <see cref="RateNoise"/>, the probes at one duty averaged): on a noisy server a single probe
    /// that reads 10% is noise as often as not, and each back-off on noise cost the backfill half
    /// its pace (the saturated bench ran at 6% of full speed with a 6% limit and no noise test).
    /// Not 2: with one probe's error at 15-25% (a saturated closed loop on this 2-core machine),
    /// a loss of half the application's rate would then wait for a second probe.
    /// </summary>
    public double HarmConfidence { get; init; } = 1.5;

    /// <summary>
    /// Recovery needs the loss to stay this many standard errors below <see cref="HarmLimit"/>:
    /// less sure than a back-off, because a wrong step up is one additive step, undone by the next
    /// probe that finds harm.
    /// </summary>
    public double NoHarmConfidence { get; init; } = 1;

    /// <summary>Below this loss the backfill may take more (additive increase of the duty cycle).</summary>
    public double RecoverBelow { get; init; } = 0.03;

    public double RecoverStep { get; init; } = 0.1;

    public double MinDuty { get; init; } = 0.05;

    /// <summary>
    /// The duty cycle a backfill starts with on a busy server (full speed took a third of a
    /// saturated 2-core server's throughput). Until a first harm is seen it doubles after every
    /// harmless window (slow start); after that it grows by <see cref="RecoverStep"/>.
    /// </summary>
    public double StartDutyWhenBusy { get; init; } = 0.35;

    /// <summary>
    /// A busy server: the other sessions run statements this many at a time on average (heavy
    /// statements; active time, PostgreSQL 14+)...
    /// </summary>
    public double BusyActiveSessions { get; init; } = 0.5;

    /// <summary>
    /// ... or commit this many transactions per second (light ones: a saturating point-query load
    /// spends most of its time in the clients and the network, its active time stays near 0.3).
    /// </summary>
    public double BusyTransactionsPerSecond { get; init; } = 1000;

    /// <summary>
    /// Below the busy thresholds but at least this many transactions per second: a light load. It
    /// keeps full speed without probes while its rate holds, but one that falls more than
    /// <see cref="HarmLimit"/> below the last probe's is probed, and throttled if it loses to us (a
    /// saturated application on a slow or overloaded machine commits few transactions: 1,400 tx/s
    /// on the bench's 2-core machine under a load average of 50). An open loop below capacity keeps
    /// its rate, so it is never probed.
    /// </summary>
    public double LightLoadTransactionsPerSecond { get; init; } = 100;

    /// <summary>Probe again after this long, doubling up to <see cref="MaxProbeInterval"/> while probes find no harm.</summary>
    public TimeSpan FirstProbeInterval { get; init; } = TimeSpan.FromSeconds(6);

    public TimeSpan MaxProbeInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The others' rate rising this much above the last pause's means the load changed: the baseline is stale, probe now.</summary>
    public double LoadChange { get; init; } = 1.15;

    /// <summary>
    /// These settings with another harm limit (Invoke-Backfill -MaxImpact); the recovery threshold
    /// stays at half of it, as 3% is of 6%.
    /// </summary>
    public ThrottleSettings WithHarmLimit(double limit) => this with { HarmLimit = limit, RecoverBelow = limit / 2 };

    /// <summary>Every decision, as it is taken (tests and the bench record them; the log gets a verbose line either way).</summary>
    public Action<ThrottleDecision>? OnDecision { get; init; }
}
