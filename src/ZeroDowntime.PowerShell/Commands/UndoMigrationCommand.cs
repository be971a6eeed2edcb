using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Rolls an active migration back to the original shape, dropping what the expand phase created.
/// ConfirmImpact High: it drops objects (and any data written only to them).
/// </summary>
[Cmdlet(VerbsCommon.Undo, "Migration", HelpUri = HelpLinks.Base + "undo-migration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class UndoMigrationCommand : ZdtMigrationPhaseCmdletBase
{
    protected override Task<PhasePlan> PlanAsync(MigrationEngine engine, long id, CancellationToken ct) => engine.PlanUndoAsync(id, ct);
}
