using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell;

/// <summary>
/// A cmdlet that runs one phase of an existing migration, identified by -Id (bound by property
/// name from a piped Migration or ParityResult): plan, ShouldProcess with the plan's SQL, run.
/// Piped migrations are independent, so a failure is reported with WriteError and the next one
/// is still processed.
/// </summary>
public abstract class ZdtMigrationPhaseCmdletBase : ZdtDdlCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("MigrationId")]
    [ValidateRange(1L, long.MaxValue)]
    [ArgumentCompleter(typeof(MigrationIdCompleter))]
    public long Id { get; set; }

    protected override object? ErrorTarget => Id;

    /// <summary>Plans the phase (read-only): what -WhatIf shows.</summary>
    protected abstract Task<PhasePlan> PlanAsync(MigrationEngine engine, long id, CancellationToken ct);

    /// <summary>Runs the plan; most phases run through RunAsync, the backfill takes its options.</summary>
    protected virtual Task<Migration> RunAsync(MigrationEngine engine, PhasePlan plan, CancellationToken ct) => engine.RunAsync(plan, ct);

    protected override void ProcessRecord()
    {
        PlanThenRun((engine, ct) => PlanAsync(engine, Id, ct), (engine, planned, ct) => RunAsync(engine, planned, ct), OnFailure.ReportAndContinue);
    }
}
