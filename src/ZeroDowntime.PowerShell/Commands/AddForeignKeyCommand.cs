using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Adds a foreign key NOT VALID, then validates it in its own transaction, which lets reads and
/// writes go on. Orphan rows are counted in the error, and the half-added constraint is dropped
/// again. Runs to its end in one call: the ledger records it as completed.
/// </summary>
[Cmdlet(VerbsCommon.Add, "ForeignKey", HelpUri = HelpLinks.Base + "add-foreignkey", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class AddForeignKeyCommand : ZdtMigrationStartCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string Table { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ColumnNameCompleter))]
    public string[] Column { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, Position = 2)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string ReferencedTable { get; set; } = "";

    /// <summary>The referenced columns; the referenced table's primary key when not given.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[] ReferencedColumn { get; set; } = Array.Empty<string>();

    /// <summary>The referenced table's schema; the table's own schema when not given.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string? ReferencedSchema { get; set; }

    /// <summary>
    /// What deleting a referenced row does. A string rather than the engine's ForeignKeyAction enum:
    /// a value-type field from the engine would have to load before the module's assembly resolver runs.
    /// </summary>
    [Parameter]
    [ValidateSet("NoAction", "Restrict", "Cascade", "SetNull", "SetDefault")]
    public string OnDelete { get; set; } = "NoAction";

    /// <summary>What updating a referenced key does.</summary>
    [Parameter]
    [ValidateSet("NoAction", "Restrict", "Cascade", "SetNull", "SetDefault")]
    public string OnUpdate { get; set; } = "NoAction";

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
        // ValidateSet accepts any casing ('cascade'); so does the parse.
        var request = new AddConstraintRequest(Schema, Table, ConstraintKind.ForeignKey)
        {
            Name = Name,
            Columns = Column,
            ReferencedSchema = ReferencedSchema,
            ReferencedTable = ReferencedTable,
            ReferencedColumns = ReferencedColumn,
            OnDelete = Enum.Parse<ForeignKeyAction>(OnDelete, ignoreCase: true),
            OnUpdate = Enum.Parse<ForeignKeyAction>(OnUpdate, ignoreCase: true),
            Tag = Tag,
        };
        // Tables may come from the pipeline: report this one and go on with the next.
        PlanThenRun((engine, ct) => engine.PlanAddConstraintAsync(request, ct), OnFailure.ReportAndContinue);
    }
}
