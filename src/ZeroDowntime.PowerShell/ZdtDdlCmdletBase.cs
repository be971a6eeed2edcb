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
