using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell;

/// <summary>
/// Suspend-Backfill, Resume-Backfill, Set-BackfillThrottle: they change what the migration's ledger
/// row asks of its backfill, which a running Invoke-Backfill (in any session) reads between batches.
/// Like Test-ColumnParity they touch no table data, only the ledger, so no ShouldProcess (the module's
/// rule: the cmdlets with ShouldProcess are the DDL ones, with -LockTimeout).
/// </summary>
public abstract class BackfillControlCmdletBase : ZdtCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("MigrationId")]
    [ValidateRange(1L, long.MaxValue)]
    public long Id { get; set; }

    protected override object? ErrorTarget => Id;

    protected abstract Task<Migration> ChangeAsync(MigrationEngine engine, CancellationToken ct);

    protected override void ProcessRecord()
    {
        try
        {
            WriteObject(RunEngine(ChangeAsync));
        }
        catch (EngineFailedException failure)
        {
            // Piped migrations are independent: report this one and go on with the next.
            WriteError(failure.ErrorRecord);
        }
    }
}
