using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Expand phase of a table rename: renames the table and keeps the old name working through an
/// updatable view until Complete-Contract drops it.
/// </summary>
[Cmdlet(VerbsCommon.New, "TableRename", HelpUri = HelpLinks.Base + "new-tablerename", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class NewTableRenameCommand : ZdtMigrationStartCmdletBase
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string Table { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string NewName { get; set; } = "";

    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string Schema { get; set; } = "public";

    protected override object? ErrorTarget => $"{Schema}.{Table}";

    protected override void ProcessRecord()
    {
        // One rename per call: when it fails there is nothing left for the command to do.
        PlanThenRun((engine, ct) => engine.PlanTableRenameAsync(new TableRenameRequest(Schema, Table, NewName) { Tag = Tag }, ct), OnFailure.Stop);
    }
}
