using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Creates an index with CREATE INDEX CONCURRENTLY, checks that it is valid, and drops the INVALID
/// index a failed build leaves (the error says why, e.g. how many keys are duplicated). Runs to its
/// end in one call: the ledger records it as completed.
/// </summary>
[Cmdlet(VerbsCommon.New, "Index", HelpUri = HelpLinks.Base + "new-index", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class NewIndexCommand : ZdtMigrationStartCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string Table { get; set; } = "";

    /// <summary>Key columns by exact name, first in the key.</summary>
    [Parameter(Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ColumnNameCompleter))]
    public string[] Column { get; set; } = Array.Empty<string>();

    /// <summary>Key expressions as SQL, e.g. 'lower(email)', after the columns.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[] Expression { get; set; } = Array.Empty<string>();

    /// <summary>Non-key columns stored in the index.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ColumnNameCompleter))]
    public string[] Include { get; set; } = Array.Empty<string>();

    /// <summary>The predicate of a partial index as SQL.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Where { get; set; }

    /// <summary>The access method: btree (the default), hash, gin, gist, brin, spgist or an extension's.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Method { get; set; }

    [Parameter]
    public SwitchParameter Unique { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string Schema { get; set; } = "public";

    /// <summary>
    /// When an index of this name (given, or derived) already exists on the table, run nothing and
    /// return its ledger record, if any: a pipeline stage run again passes (CREATE INDEX IF NOT EXISTS).
    /// </summary>
    [Parameter]
    public SwitchParameter IfNotExists { get; set; }

    protected override object? ErrorTarget => $"{Schema}.{Table}";

    protected override void ProcessRecord()
    {
        var request = new CreateIndexRequest(Schema, Table)
        {
            Name = Name,
            Columns = Column,
            Expressions = Expression,
            Include = Include,
            Where = Where,
            Method = Method,
            Unique = Unique.IsPresent,
            Tag = Tag,
            IfNotExists = IfNotExists.IsPresent,
        };
        // Tables may come from the pipeline: report this one and go on with the next.
        PlanThenRun((engine, ct) => engine.PlanCreateIndexAsync(request, ct), OnFailure.ReportAndContinue);
    }
}
