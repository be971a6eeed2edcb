using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Adds a PRIMARY KEY: its unique index is built with CREATE UNIQUE INDEX CONCURRENTLY, then attached
/// with ADD CONSTRAINT ... USING INDEX, a catalog change. The columns must already be NOT NULL (Set-ColumnNotNull): otherwise PostgreSQL would scan the table under ACCESS EXCLUSIVE to set it, and the command refuses. Duplicates are counted in the
/// error and the index is dropped again. Runs to its end in one call: the ledger records it as completed.
/// </summary>
[Cmdlet(VerbsCommon.Add, "PrimaryKey", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
public sealed class AddPrimaryKeyCommand : ZdtDdlCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Table { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[] Column { get; set; } = Array.Empty<string>();

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Schema { get; set; } = "public";

    protected override object? ErrorTarget => $"{Schema}.{Table}";

    protected override void ProcessRecord()
    {
        var request = new AddConstraintRequest(Schema, Table, ConstraintKind.PrimaryKey) { Name = Name, Columns = Column };
        // Tables may come from the pipeline: report this one and go on with the next.
        PlanThenRun((engine, ct) => engine.PlanAddConstraintAsync(request, ct), OnFailure.ReportAndContinue);
    }
}
