using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Drops an index with DROP INDEX CONCURRENTLY. Refuses an index that backs a constraint or the
/// replica identity. Irreversible (the ledger keeps the definition), hence ConfirmImpact High.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "Index", HelpUri = HelpLinks.Base + "remove-index", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class RemoveIndexCommand : ZdtMigrationStartCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(IndexNameCompleter))]
    public string Name { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string Schema { get; set; } = "public";

    /// <summary>When there is no index of this name, run nothing and write no error (DROP INDEX IF EXISTS).</summary>
    [Parameter]
    public SwitchParameter IfExists { get; set; }

    protected override object? ErrorTarget => $"{Schema}.{Name}";

    protected override void ProcessRecord()
    {
        var request = new DropIndexRequest(Schema, Name) { Tag = Tag, IfExists = IfExists.IsPresent };
        // Indexes may come from the pipeline: report this one and go on with the next.
        PlanThenRun((engine, ct) => engine.PlanDropIndexAsync(request, ct), OnFailure.ReportAndContinue);
    }
}
