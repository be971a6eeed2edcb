using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Contract phase: drops what kept the old shape working (views, triggers, old columns). Irreversible,
/// hence ConfirmImpact High.
/// </summary>
[Cmdlet(VerbsLifecycle.Complete, "Contract", HelpUri = HelpLinks.Base + "complete-contract", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class CompleteContractCommand : ZdtMigrationPhaseCmdletBase
{
    protected override Task<PhasePlan> PlanAsync(MigrationEngine engine, long id, CancellationToken ct) => engine.PlanContractAsync(id, ct);
}
