using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Contract phase: drops what kept the old shape working (views, triggers, old columns). Irreversible,
/// hence ConfirmImpact High.
/// </summary>
[Cmdlet(VerbsLifecycle.Complete, "Contract", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(Migration))]
public sealed class CompleteContractCommand : ZdtDdlCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("MigrationId")]
    [ValidateRange(1L, long.MaxValue)]
    public long Id { get; set; }

    protected override object? ErrorTarget => Id;

    protected override void ProcessRecord()
    {
        try
        {
            var plan = RunEngine((engine, ct) => engine.PlanContractAsync(Id, ct));
            if (ShouldRun(plan))
            {
                WriteObject(RunEngine((engine, ct) => engine.RunAsync(plan, ct)));
            }
        }
        catch (EngineFailedException failure)
        {
            // Piped migrations are independent: report this one and go on with the next.
            WriteError(failure.ErrorRecord);
        }
    }
}
