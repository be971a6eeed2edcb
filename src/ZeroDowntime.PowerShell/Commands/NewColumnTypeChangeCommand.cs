using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Expand phase of a column type change. When the server can change the type without a rewrite it
/// is done at once (a catalog change); otherwise a shadow column of the new type is kept in sync by
/// trigger until Complete-Contract gives it the column's name (Invoke-Backfill and
/// Test-ColumnParity in between).
/// </summary>
[Cmdlet(VerbsCommon.New, "ColumnTypeChange", HelpUri = HelpLinks.Base + "new-columntypechange", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class NewColumnTypeChangeCommand : ZdtMigrationStartCmdletBase
{
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
    public string Type { get; set; } = "";

    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string Schema { get; set; } = "public";

    /// <summary>Old to new value: an expression over the column's name, as ALTER COLUMN TYPE ... USING takes it.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Using { get; set; }

    /// <summary>New to old value: an expression over the column's name.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ReverseUsing { get; set; }

    /// <summary>Point other tables' foreign keys that reference the column at the new column in the same migration.</summary>
    [Parameter]
    public SwitchParameter Cascade { get; set; }

    /// <summary>Fail the application's writes of a value that does not convert, instead of keeping the new column NULL for them.</summary>
    [Parameter]
    public SwitchParameter RejectUnconvertibleWrites { get; set; }

    protected override object? ErrorTarget => $"{Schema}.{Table}.{Column}";

    protected override void ProcessRecord()
    {
        var request = new ColumnTypeChangeRequest(Schema, Table, Column, Type) { Using = Using, ReverseUsing = ReverseUsing, Cascade = Cascade.IsPresent, RejectUnconvertibleWrites = RejectUnconvertibleWrites.IsPresent, Tag = Tag };
        PlanThenRun((engine, ct) => engine.PlanColumnTypeChangeAsync(request, ct), OnFailure.Stop);
    }
}
