using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Adds a CHECK constraint NOT VALID, then validates it in its own transaction, which lets reads
/// and writes go on. Rows that violate it are counted in the error, and the half-added constraint is
/// dropped again. Runs to its end in one call: the ledger records it as completed.
/// </summary>
[Cmdlet(VerbsCommon.Add, "CheckConstraint", HelpUri = HelpLinks.Base + "add-checkconstraint", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class AddCheckConstraintCommand : ZdtMigrationStartCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string Table { get; set; } = "";

    /// <summary>The check as an SQL boolean expression, e.g. 'qty > 0'.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Expression { get; set; } = "";

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string Schema { get; set; } = "public";

    protected override object? ErrorTarget => $"{Schema}.{Table}";

    protected override void ProcessRecord()
    {
        var request = new AddConstraintRequest(Schema, Table, ConstraintKind.Check) { Name = Name, Check = Expression, Tag = Tag };
        // Tables may come from the pipeline: report this one and go on with the next.
        PlanThenRun((engine, ct) => engine.PlanAddConstraintAsync(request, ct), OnFailure.ReportAndContinue);
    }
}
