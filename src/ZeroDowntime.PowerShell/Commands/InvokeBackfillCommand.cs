using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Backfill phase: fills the new shape for the rows that predate the expand, in small batches that
/// each commit with their checkpoint. Writes every row, hence ShouldProcess (the -WhatIf output is
/// one batch's SQL). Ctrl+C stops it after the batch in flight rolls back; running it again resumes
/// from the last checkpoint. Derives from the DDL base class: -LockTimeout is each batch's lock_timeout.
/// By default an adaptive throttle paces it: it compares the rest of the server's transaction rate
/// while it works and while it pauses, and works only the share of the time that costs the others
/// little (full speed on an idle server). -TargetBatchTime, -BatchSize or -Delay set the pace
/// explicitly instead and switch the adaptive throttle off.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "Backfill", HelpUri = HelpLinks.Base + "invoke-backfill", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class InvokeBackfillCommand : ZdtMigrationPhaseCmdletBase
{
    private static readonly BackfillOptions Defaults = new();

    /// <summary>The batch size adapts so that each batch takes about this long (100 ms by default). Ignored with -BatchSize. Given, it switches the adaptive throttle off: batches follow each other with no pause but -Delay (-TargetBatchTime 100ms is full speed).</summary>
    [Parameter]
    [Duration]
    [ValidateTimeSpanRange(1, 60_000)]
    public TimeSpan TargetBatchTime { get; set; } = Defaults.TargetBatchTime;

    /// <summary>A fixed number of rows per batch instead of adapting to TargetBatchTime. Switches the adaptive throttle off.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int BatchSize { get; set; }

    /// <summary>A fixed pause after every batch. Switches the adaptive throttle off.</summary>
    [Parameter]
    [Duration]
    [ValidateTimeSpanRange(0, 3_600_000)]
    public TimeSpan Delay { get; set; } = Defaults.Delay;

    /// <summary>Pause while a replica's replay lag is above this. Not given: replicas are not watched.</summary>
    [Parameter]
    [Duration]
    [ValidateTimeSpanRange(1, 86_400_000)]
    public TimeSpan MaxReplicationLag { get; set; }

    /// <summary>Stop after this many batches; run the command again to continue.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxBatches { get; set; }

    // Operator controls (issue 11): load ceiling and time box. Pause, resume and retune come from
    // Suspend-Backfill, Resume-Backfill and Set-BackfillThrottle in another session.

    /// <summary>Wait before a batch while more than this many other sessions run a statement.</summary>
    [Parameter]
    [ValidateRange(0, 100_000)]
    public int MaxLoad { get; set; }

    /// <summary>
    /// The share of the other sessions' throughput, in percent, the adaptive throttle lets the
    /// backfill cost them (6 by default). Higher finishes sooner on a busy server and costs its
    /// application more. Only with the adaptive throttle: -TargetBatchTime, -BatchSize and -Delay switch it off.
    /// </summary>
    [Parameter]
    [ValidateRange(1, 50)]
    public int MaxImpact { get; set; }

    /// <summary>Stop at the first batch boundary after running this long; run again to continue.</summary>
    [Parameter]
    [Duration]
    [ValidateTimeSpanRange(1, 604_800_000)]
    public TimeSpan MaxDuration { get; set; }

    /// <summary>Stop at the first batch boundary at or after this time (local time unless it says otherwise).</summary>
    [Parameter]
    public DateTime StopAt { get; set; }

    /// <summary>
    /// Leave out the VACUUM (ANALYZE) that ends the backfill. Without it the dead row versions the
    /// backfill left wake autovacuum, whose worker Complete-Contract may then have to wait for.
    /// </summary>
    [Parameter]
    public SwitchParameter SkipVacuum { get; set; }

    private SigtermStop? _sigterm;

    /// <summary>-MaxImpact given with an explicit pace, which has no adaptive throttle to limit.</summary>
    public const string MaxImpactNeedsThrottleErrorId = "MaxImpactNeedsAdaptiveThrottle";

    protected override void ProcessRecord()
    {
        if (MyInvocation.BoundParameters.ContainsKey(nameof(MaxImpact)) && !BuildBackfillOptions().Adaptive)
        {
            const string message = "-MaxImpact limits the adaptive throttle, which -TargetBatchTime, -BatchSize and -Delay switch off. Give either -MaxImpact or an explicit pace. Nothing was changed.";
            // A usage error, terminating like a parameter binding error (the error contract in the README).
            ThrowTerminatingError(EngineErrors.WithAdvice(new ErrorRecord(new PSArgumentException(message, nameof(MaxImpact)), MaxImpactNeedsThrottleErrorId, ErrorCategory.InvalidArgument, MaxImpact)));
        }

        using (_sigterm = new SigtermStop())
        {
            base.ProcessRecord();
        }
    }

    /// <summary>Ctrl+C, like SIGTERM: the batch in flight commits, then the run stops with its checkpoint.</summary>
    private protected override bool StopGracefully() => _sigterm?.RequestStop() ?? false;

    protected override Task<PhasePlan> PlanAsync(MigrationEngine engine, long id, CancellationToken ct) => engine.PlanBackfillAsync(id, vacuumAfter: !SkipVacuum, ct);

    protected override Task<Migration> RunAsync(MigrationEngine engine, PhasePlan plan, CancellationToken ct)
    {
        var options = BuildBackfillOptions() with { StopAfterBatch = _sigterm?.Token ?? CancellationToken.None };
        return engine.RunBackfillAsync(plan, options, ct);
    }

    private BackfillOptions BuildBackfillOptions()
    {
        // int and TimeSpan cannot say "not given"; PowerShell tracks what was bound.
        var bound = MyInvocation.BoundParameters;
        return Defaults with
        {
            // Any explicit pace is the caller's choice, kept as given: the adaptive throttle is off.
            Adaptive = !bound.ContainsKey(nameof(TargetBatchTime)) && !bound.ContainsKey(nameof(BatchSize)) && !bound.ContainsKey(nameof(Delay)),
            TargetBatchTime = TargetBatchTime,
            Delay = Delay,
            BatchSize = bound.ContainsKey(nameof(BatchSize)) ? BatchSize : null,
            MaxReplicationLag = bound.ContainsKey(nameof(MaxReplicationLag)) ? MaxReplicationLag : null,
            MaxBatches = bound.ContainsKey(nameof(MaxBatches)) ? MaxBatches : null,
            MaxLoad = bound.ContainsKey(nameof(MaxLoad)) ? MaxLoad : null,
            MaxImpactPercent = bound.ContainsKey(nameof(MaxImpact)) ? MaxImpact : null,
            MaxDuration = bound.ContainsKey(nameof(MaxDuration)) ? MaxDuration : null,
            StopAt = bound.ContainsKey(nameof(StopAt)) ? new DateTimeOffset(StopAt.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(StopAt, DateTimeKind.Local) : StopAt) : null,
        };
    }
}
