using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell;

/// <summary>
/// The cmdlets that run DDL: lock-timeout settings, -WhatIf / -Confirm on the planned SQL, and the
/// plan as data (-PlanOnly, -PlanPath, -ExpectedPlan). Each cmdlet declares [OutputType(typeof(PhasePlan))]
/// besides what it outputs when it runs (PowerShell reads a cmdlet's own attributes only, not its base's).
/// </summary>
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

    /// <summary>
    /// Plan only: output the plan (steps with their SQL, lock, lock target and why; the whole
    /// script in its Script property) and change nothing. Planning is read-only.
    /// </summary>
    [Parameter]
    public SwitchParameter PlanOnly { get; set; }

    /// <summary>
    /// Write the plan's SQL script to this file (for review, a pipeline artifact) and change nothing:
    /// implies -PlanOnly. The plans of several piped inputs go to the same file, one after the other.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? PlanPath { get; set; }

    /// <summary>
    /// A plan file written by -PlanPath and approved: run only when the SQL planned now is exactly the
    /// SQL of its plan for this phase, else fail with PlanNotApproved and change nothing.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ExpectedPlan { get; set; }

    protected override EngineOptions BuildOptions()
        => base.BuildOptions() with { LockTimeout = LockTimeout, LockRetryTimeout = LockRetryTimeout };

    // Set by a failure under OnFailure.Stop: the rest of the piped input is skipped.
    private bool failedEarlier;

    // -PlanPath: the command's first plan replaces the file, the plans of later inputs are appended.
    private bool planFileStarted;

    // -ExpectedPlan, read once per command.
    private ApprovedPlan? approvedPlan;

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
            if (ExpectedPlan is not null)
            {
                RequireApproved(planned);
            }

            if (PlanOnly || PlanPath is not null)
            {
                OutputPlan(planned);
                return;
            }

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

    /// <summary>
    /// -PlanOnly / -PlanPath: the plan goes out as an object (with its script as Script) and, with
    /// -PlanPath, into the file; nothing runs.
    /// </summary>
    private void OutputPlan(PhasePlan planned)
    {
        var script = planned.ToScript(LockTimeout);
        if (PlanPath is not null)
        {
            var path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(PlanPath);
            var section = ApprovedPlan.Section(planned, LockTimeout, DateTimeOffset.UtcNow);
            try
            {
                if (Path.GetDirectoryName(path) is { Length: > 0 } directory)
                {
                    Directory.CreateDirectory(directory);
                }

                if (planFileStarted)
                {
                    File.AppendAllText(path, "\n" + section);
                }
                else
                {
                    File.WriteAllText(path, section);
                    planFileStarted = true;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new EngineFailedException(EngineErrors.Create(
                    ErrorIds.PlanNotWritten,
                    ErrorKind.PermissionDenied,
                    $"The plan could not be written to {path}: {ex.Message} Nothing was changed.",
                    PlanPath));
            }

            WriteLog($"Plan written to {path}: {planned.Key}{(planned.AlreadyDone ? " (nothing to run)" : "")}");
        }

        var output = PSObject.AsPSObject(planned);
        output.Properties.Add(new PSNoteProperty("Script", script));
        WriteObject(output);
    }

    /// <summary>-ExpectedPlan: refuses (PlanNotApproved) a plan whose SQL is not in the approved file.</summary>
    private void RequireApproved(PhasePlan planned)
    {
        if (approvedPlan is null)
        {
            var path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(ExpectedPlan);
            if (!File.Exists(path))
            {
                throw new EngineFailedException(EngineErrors.Create(
                    ErrorIds.PlanNotApproved,
                    ErrorKind.ObjectNotFound,
                    $"The approved plan file {path} does not exist. Nothing was changed.",
                    ExpectedPlan));
            }

            try
            {
                approvedPlan = ApprovedPlan.Parse(File.ReadAllText(path), path);
            }
            catch (ZdtException invalid)
            {
                throw new EngineFailedException(EngineErrors.ToErrorRecord(invalid, ExpectedPlan));
            }
        }

        try
        {
            approvedPlan.Require(planned, LockTimeout);
        }
        catch (ZdtException refused)
        {
            throw new EngineFailedException(EngineErrors.ToErrorRecord(refused, ErrorTarget));
        }

        if (!planned.AlreadyDone)
        {
            WriteLog($"The SQL planned now is the approved plan's ({planned.Key}).");
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
