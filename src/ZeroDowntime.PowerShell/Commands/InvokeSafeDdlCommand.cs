using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Runs one DDL statement the module has no operation for through the lock-safe executor (short
/// lock_timeout, capped retries, blocker report), outside a transaction block when it says
/// CONCURRENTLY. Warns when the statement is a known dangerous form, naming the safe cmdlet.
/// Arbitrary DDL cannot be undone by the module, hence ConfirmImpact High.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "SafeDdl", HelpUri = HelpLinks.Base + "invoke-safeddl", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class InvokeSafeDdlCommand : ZdtMigrationStartCmdletBase
{
    /// <summary>One DDL statement.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Sql { get; set; } = "";

    /// <summary>The table the statement changes, when it cannot be told from the statement.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string? Table { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string? Schema { get; set; }

    protected override object? ErrorTarget => Sql;

    protected override void ProcessRecord()
    {
        var request = new SafeDdlRequest(Sql) { Table = Table, Schema = Schema, Tag = Tag };
        // Piped statements usually depend on each other: after a failure, run none of the rest.
        PlanThenRun((engine, ct) => engine.PlanSafeDdlAsync(request, ct), OnFailure.Stop);
    }
}
