using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Expand phase of making a column NOT NULL: counts the NULLs first (and refuses with the count),
/// then adds CHECK (col IS NOT NULL) NOT VALID and validates it without blocking writes.
/// Complete-Contract sets NOT NULL without a scan; Undo-Migration drops the check.
/// </summary>
[Cmdlet(VerbsCommon.Set, "ColumnNotNull", HelpUri = HelpLinks.Base + "set-columnnotnull", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class SetColumnNotNullCommand : ZdtMigrationStartCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string Table { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ColumnNameCompleter))]
    public string Column { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string Schema { get; set; } = "public";

    protected override object? ErrorTarget => $"{Schema}.{Table}.{Column}";

    protected override void ProcessRecord()
    {
        var request = new SetColumnNotNullRequest(Schema, Table, Column) { Tag = Tag };
        // Columns may come from the pipeline: report this one and go on with the next.
        PlanThenRun((engine, ct) => engine.PlanSetColumnNotNullAsync(request, ct), OnFailure.ReportAndContinue);
    }
}
