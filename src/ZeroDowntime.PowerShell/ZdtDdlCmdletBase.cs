using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell;

/// <summary>The cmdlets that run DDL: lock-timeout settings and -WhatIf / -Confirm on the planned SQL.</summary>
public abstract class ZdtDdlCmdletBase : ZdtCmdletBase
{
    private static readonly EngineOptions Defaults = new();

    /// <summary>lock_timeout of every DDL attempt: how long the application may queue behind it.</summary>
    [Parameter]
    [ValidateTimeSpanRange(1, 60_000)]
    public TimeSpan LockTimeout { get; set; } = Defaults.LockTimeout;

    /// <summary>How long to keep retrying a DDL step that cannot get its lock.</summary>
    [Parameter]
    [ValidateTimeSpanRange(0, 86_400_000)]
    public TimeSpan LockRetryTimeout { get; set; } = Defaults.LockRetryTimeout;

    protected override EngineOptions BuildOptions()
        => base.BuildOptions() with { LockTimeout = LockTimeout, LockRetryTimeout = LockRetryTimeout };

    /// <summary>What a failed call does to the rest of the pipeline's input.</summary>
    protected enum OnFailure
    {
        /// <summary>WriteError: piped inputs are independent, the next one is still processed.</summary>
        ReportAndContinue,

        /// <summary>ThrowTerminatingError: one thing per call, or inputs that depend on each other.</summary>
        Stop,
    }

    /// <summary>
    /// The shape of every state-changing cmdlet: plan (read-only), ShouldProcess with the plan's SQL
    /// (what -WhatIf prints), run that same plan, output what it returns.
    /// </summary>
    protected void PlanThenRun<T>(
        Func<MigrationEngine, CancellationToken, Task<PhasePlan>> plan,
        Func<MigrationEngine, PhasePlan, CancellationToken, Task<T>> run,
        OnFailure onFailure)
    {
        try
        {
            var planned = RunEngine(plan);
            if (ShouldRun(planned))
            {
                WriteObject(RunEngine((engine, ct) => run(engine, planned, ct)), enumerateCollection: true);
            }
        }
        catch (EngineFailedException failure) when (onFailure == OnFailure.ReportAndContinue)
        {
            WriteError(failure.ErrorRecord);
        }
        catch (EngineFailedException failure)
        {
            ThrowTerminatingError(failure.ErrorRecord);
        }
    }

    /// <summary>PlanThenRun for a plan the engine's RunAsync runs.</summary>
    protected void PlanThenRun(Func<MigrationEngine, CancellationToken, Task<PhasePlan>> plan, OnFailure onFailure)
        => PlanThenRun(plan, (engine, planned, ct) => engine.RunAsync(planned, ct), onFailure);

    /// <summary>
    /// Asks ShouldProcess about a planned phase. The description is the plan's SQL script, so
    /// -WhatIf prints exactly the SQL that would run; -Confirm shows it too before asking.
    /// </summary>
    protected bool ShouldRun(PhasePlan plan)
    {
        var script = plan.ToScript(LockTimeout);
        var warning = $"{plan.Summary}.{Environment.NewLine}This SQL will run:{Environment.NewLine}{script}{Environment.NewLine}Continue?";
        var caption = $"{plan.Action} {plan.Operation} on {plan.Target}";
        return ShouldProcess(script, warning, caption);
    }
}
