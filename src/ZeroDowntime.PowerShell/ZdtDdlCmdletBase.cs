using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell;

/// <summary>The cmdlets that run DDL: lock-timeout settings and -WhatIf / -Confirm on the planned SQL.</summary>
public abstract class ZdtDdlCmdletBase : ZdtCmdletBase
{
    private static readonly EngineOptions Defaults = new();

    /// <summary>lock_timeout of every DDL attempt: how long the application may queue behind it.</summary>
    [Parameter]
    [Duration]
    [ValidateTimeSpanRange(1, 60_000)]
    public TimeSpan LockTimeout { get; set; } = Defaults.LockTimeout;

    /// <summary>How long to keep retrying a DDL step that cannot get its lock.</summary>
    [Parameter]
    [Duration]
    [ValidateTimeSpanRange(0, 86_400_000)]
    public TimeSpan LockRetryTimeout { get; set; } = Defaults.LockRetryTimeout;

    protected override EngineOptions BuildOptions()
        => base.BuildOptions() with { LockTimeout = LockTimeout, LockRetryTimeout = LockRetryTimeout };

    // Set by a failure under OnFailure.Stop: the rest of the piped input is skipped.
    private bool failedEarlier;

    /// <summary>
    /// What a failed call does to the rest of the pipeline's input. Either way the failure itself is
    /// reported by the error contract (<see cref="ZdtCmdletBase.ReportFailure"/>).
    /// </summary>
    protected enum OnFailure
    {
        /// <summary>Piped inputs are independent: the next one is still processed.</summary>
        ReportAndContinue,

        /// <summary>
        /// Inputs depend on each other (piped DDL statements), or there is one per call: after a
        /// failure, each later input is reported as skipped (SkippedAfterFailure), not run.
        /// </summary>
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
        if (failedEarlier)
        {
            WriteError(EngineErrors.Create(
                ErrorIds.SkippedAfterFailure,
                ErrorKind.OperationStopped,
                "Not run: an earlier input of this pipeline failed, and the inputs of this command depend on each other. Nothing was changed by this one.",
                ErrorTarget));
            return;
        }

        try
        {
            var planned = RunEngine(plan);
            if (planned.AlreadyDone)
            {
                // Nothing would change, so there is nothing to confirm: a stage run again passes in
                // a non-interactive host too. The log says why; the migration it names is output.
                if (planned.MigrationId is null)
                {
                    WriteLog(planned.Summary);
                }
                else
                {
                    WriteObject(RunEngine((engine, ct) => run(engine, planned, ct)), enumerateCollection: true);
                }

                return;
            }

            if (ShouldRun(planned))
            {
                var result = RunEngine((engine, ct) => run(engine, planned, ct));
                // The closing line of the log: what the command left the migration in.
                foreach (var item in result is System.Collections.IEnumerable many and not string ? many.Cast<object>() : [result!])
                {
                    WriteLog($"{planned.Action} done: {item}");
                }

                WriteObject(result, enumerateCollection: true);
            }
        }
        catch (EngineFailedException failure)
        {
            failedEarlier = onFailure == OnFailure.Stop;
            ReportFailure(failure);
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
