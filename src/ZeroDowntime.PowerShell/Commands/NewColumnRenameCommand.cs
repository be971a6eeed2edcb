using System.Globalization;
using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Expand phase of a column rename. Copy strategy: adds the new column and keeps both in sync by
/// trigger until Complete-Contract drops the old one (Invoke-Backfill and Test-ColumnParity in
/// between). View strategy: serves the new name through a view in a version schema.
/// </summary>
[Cmdlet(VerbsCommon.New, "ColumnRename", HelpUri = HelpLinks.Base + "new-columnrename", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class NewColumnRenameCommand : ZdtMigrationStartCmdletBase
{
    public const string VersionSchemaNeedsViewErrorId = "VersionSchemaNeedsViewStrategy";

    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string Table { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ColumnNameCompleter))]
    public string Column { get; set; } = "";

    [Parameter(Mandatory = true, Position = 2)]
    [ValidateNotNullOrEmpty]
    public string NewName { get; set; } = "";

    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string Schema { get; set; } = "public";

    /// <summary>
    /// Copy or View. A string rather than the engine's RenameStrategy enum: a value-type field from
    /// the engine would have to load before the module's assembly resolver runs (see ModuleSurfaceTests).
    /// </summary>
    [Parameter]
    [ValidateSet("Copy", "View")]
    public string Strategy { get; set; } = "Copy";

    /// <summary>View strategy only: the schema that holds the view with the new column name.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(VersionSchemaNameCompleter))]
    public string? VersionSchema { get; set; }

    protected override object? ErrorTarget => $"{Schema}.{Table}.{Column}";

    protected override void ProcessRecord()
    {
        // ValidateSet accepts any casing ('copy'); so does the parse.
        var strategy = Enum.Parse<RenameStrategy>(Strategy, ignoreCase: true);
        if (VersionSchema is not null && strategy != RenameStrategy.View)
        {
            var message = string.Format(CultureInfo.InvariantCulture, "-VersionSchema applies only to -Strategy View; the {0} strategy has no version schema. Nothing was changed.", strategy);
            // A usage error, terminating like a parameter binding error (the error contract in the README).
            ThrowTerminatingError(EngineErrors.WithAdvice(new ErrorRecord(new PSArgumentException(message, nameof(VersionSchema)), VersionSchemaNeedsViewErrorId, ErrorCategory.InvalidArgument, VersionSchema)));
        }

        var request = new ColumnRenameRequest(Schema, Table, Column, NewName) { Strategy = strategy, VersionSchema = VersionSchema, Tag = Tag };
        // One rename per call: when it fails there is nothing left for the command to do.
        PlanThenRun((engine, ct) => engine.PlanColumnRenameAsync(request, ct), OnFailure.Stop);
    }
}
