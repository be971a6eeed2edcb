using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill.Control;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Retunes a running backfill from any session: delay, batch size, target batch time, load ceiling.
/// The running Invoke-Backfill applies them before its next batch; a parameter not given is left as
/// it is. A later Invoke-Backfill starts from its own parameters again.
/// </summary>
[Cmdlet(VerbsCommon.Set, "BackfillThrottle", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, HelpUri = HelpLinks.Base + "set-backfillthrottle")]
[OutputType(typeof(Migration))]
public sealed class SetBackfillThrottleCommand : BackfillControlCmdletBase
{
    /// <summary>A pause after every batch.</summary>
    [Parameter]
    [Duration]
    [ValidateTimeSpanRange(0, 3_600_000)]
    public TimeSpan Delay { get; set; }

    /// <summary>A fixed number of rows per batch.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int BatchSize { get; set; }

    /// <summary>The time per batch the batch size adapts to (when no fixed batch size is set).</summary>
    [Parameter]
    [Duration]
    [ValidateTimeSpanRange(1, 60_000)]
    public TimeSpan TargetBatchTime { get; set; }

    /// <summary>Wait while more than this many other sessions run a statement.</summary>
    [Parameter]
    [ValidateRange(0, 100_000)]
    public int MaxLoad { get; set; }

    /// <summary>Drop earlier retuning first: back to the running Invoke-Backfill's own parameters.</summary>
    [Parameter]
    public SwitchParameter Reset { get; set; }

    protected override string Action => "Retune the backfill";

    protected override Task<Migration> ChangeAsync(MigrationEngine engine, CancellationToken ct)
    {
        // int and TimeSpan cannot say "not given"; PowerShell tracks what was bound.
        var bound = MyInvocation.BoundParameters;
        var retune = new BackfillRetune
        {
            Delay = bound.ContainsKey(nameof(Delay)) ? Delay : null,
            BatchSize = bound.ContainsKey(nameof(BatchSize)) ? BatchSize : null,
            TargetBatchTime = bound.ContainsKey(nameof(TargetBatchTime)) ? TargetBatchTime : null,
            MaxLoad = bound.ContainsKey(nameof(MaxLoad)) ? MaxLoad : null,
            Reset = Reset.IsPresent,
        };
        return engine.SetBackfillThrottleAsync(Id, retune, ct);
    }
}
