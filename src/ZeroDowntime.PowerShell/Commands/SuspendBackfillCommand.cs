using System.Management.Automation;
using ZeroDowntime.Engine;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Pauses a migration's backfill from any session: the running Invoke-Backfill finishes the batch in
/// flight and waits (heartbeat "Paused") until Resume-Backfill; a backfill started later starts paused.
/// </summary>
[Cmdlet(VerbsLifecycle.Suspend, "Backfill", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, HelpUri = HelpLinks.Base + "suspend-backfill")]
[OutputType(typeof(Migration))]
public sealed class SuspendBackfillCommand : BackfillControlCmdletBase
{
    protected override string Action => "Pause the backfill";

    protected override Task<Migration> ChangeAsync(MigrationEngine engine, CancellationToken ct) => engine.SuspendBackfillAsync(Id, ct);
}
