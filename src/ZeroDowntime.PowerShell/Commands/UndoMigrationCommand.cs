using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Rolls an active migration back to the original shape, dropping what the expand phase created.
/// ConfirmImpact High: it drops objects (and any data written only to them).
/// </summary>
[Cmdlet(VerbsCommon.Undo, "Migration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(Migration))]
public sealed class UndoMigrationCommand : ZdtDdlCmdletBase
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
            var plan = RunEngine((engine, ct) => engine.PlanUndoAsync(Id, ct));
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
