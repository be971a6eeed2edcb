using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// What Add-UniqueConstraint and Add-PrimaryKey share: a constraint backed by a unique index, built
/// with CREATE UNIQUE INDEX CONCURRENTLY and attached with ADD CONSTRAINT ... USING INDEX. They are
/// two cmdlets rather than one with a -Kind, so each has its own help and name; only the kind differs.
/// </summary>
public abstract class IndexBackedConstraintCommandBase : ZdtMigrationStartCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string Table { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ColumnNameCompleter))]
    public string[] Column { get; set; } = Array.Empty<string>();

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string Schema { get; set; } = "public";

    protected override object? ErrorTarget => $"{Schema}.{Table}";

    /// <summary>The request for this cmdlet's kind of constraint.</summary>
    protected abstract AddConstraintRequest CreateRequest();

    protected override void ProcessRecord()
    {
        var request = CreateRequest() with { Tag = Tag };

        // Tables may come from the pipeline: report this one and go on with the next.
        PlanThenRun((engine, ct) => engine.PlanAddConstraintAsync(request, ct), OnFailure.ReportAndContinue);
    }
}
