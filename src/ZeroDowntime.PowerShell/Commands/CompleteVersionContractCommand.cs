using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Contract phase of every column rename by view in one version schema, in one transaction: the
/// views go, the physical columns get their new names, and the schema is dropped when empty, so
/// the release that uses the version schema sees all its tables switch at once. Irreversible,
/// hence ConfirmImpact High. A separate cmdlet (not a parameter set of Complete-Contract) because
/// it takes a version schema rather than a migration id and outputs every migration it completed.
/// </summary>
[Cmdlet(VerbsLifecycle.Complete, "VersionContract", HelpUri = HelpLinks.Base + "complete-versioncontract", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class CompleteVersionContractCommand : ZdtDdlCmdletBase
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(VersionSchemaNameCompleter))]
    public string VersionSchema { get; set; } = "";

    protected override object? ErrorTarget => VersionSchema;

    protected override void ProcessRecord()
    {
        // One version per call: when it fails there is nothing left for the command to do.
        PlanThenRun((engine, ct) => engine.PlanContractVersionAsync(VersionSchema, ct), (engine, planned, ct) => engine.RunVersionAsync(planned, ct), OnFailure.Stop);
    }
}
