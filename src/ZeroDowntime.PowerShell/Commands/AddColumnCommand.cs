using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Expand phase of a column addition. The server decides how: instantly (a non-volatile default),
/// or nullable with its default for new rows, the existing rows filled by Invoke-Backfill, and NOT
/// NULL enforced at Complete-Contract through a validated check. Undo-Migration drops the column.
/// </summary>
[Cmdlet(VerbsCommon.Add, "Column", HelpUri = HelpLinks.Base + "add-column", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class AddColumnCommand : ZdtMigrationStartCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string Table { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ColumnNameCompleter))]
    public string Column { get; set; } = "";

    /// <summary>The column's type as SQL, e.g. 'varchar(20)'.</summary>
    [Parameter(Mandatory = true, Position = 2)]
    [ValidateNotNullOrEmpty]
    public string Type { get; set; } = "";

    /// <summary>The default as an SQL expression, e.g. "'pending'" or 'gen_random_uuid()'.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Default { get; set; }

    [Parameter]
    public SwitchParameter NotNull { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string Schema { get; set; } = "public";

    protected override object? ErrorTarget => $"{Schema}.{Table}.{Column}";

    protected override void ProcessRecord()
    {
        var request = new AddColumnRequest(Schema, Table, Column, Type, Default, NotNull.IsPresent) { Tag = Tag };
        // Tables may come from the pipeline: report this one and go on with the next.
        PlanThenRun((engine, ct) => engine.PlanAddColumnAsync(request, ct), OnFailure.ReportAndContinue);
    }
}
