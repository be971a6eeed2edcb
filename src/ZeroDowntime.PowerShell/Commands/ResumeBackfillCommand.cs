using System.Management.Automation;
using ZeroDowntime.Engine;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>Resumes a backfill paused by Suspend-Backfill; the running Invoke-Backfill continues within about a second.</summary>
[Cmdlet(VerbsLifecycle.Resume, "Backfill", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, HelpUri = HelpLinks.Base + "resume-backfill")]
[OutputType(typeof(Migration))]
public sealed class ResumeBackfillCommand : BackfillControlCmdletBase
{
    protected override string Action => "Resume the backfill";

    protected override Task<Migration> ChangeAsync(MigrationEngine engine, CancellationToken ct) => engine.ResumeBackfillAsync(Id, ct);
}
