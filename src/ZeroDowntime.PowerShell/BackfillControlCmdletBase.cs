using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell;

/// <summary>
/// Suspend-Backfill, Resume-Backfill, Set-BackfillThrottle: they change what the migration's ledger
/// row asks of its backfill, which a running Invoke-Backfill (in any session) reads between batches.
/// They touch no table data, but change how a running job behaves, hence ShouldProcess (Low).
/// </summary>
public abstract class BackfillControlCmdletBase : ZdtCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("MigrationId")]
    [ValidateRange(1L, long.MaxValue)]
    public long Id { get; set; }

    protected override object? ErrorTarget => Id;

    /// <summary>What the cmdlet asks, for -WhatIf ("pause the backfill").</summary>
    protected abstract string Action { get; }

    protected abstract Task<Migration> ChangeAsync(MigrationEngine engine, CancellationToken ct);

    protected override void ProcessRecord()
    {
        if (!ShouldProcess($"migration {Id}", Action))
        {
            return;
        }

        try
        {
            WriteObject(RunEngine(ChangeAsync));
        }
        catch (EngineFailedException failure)
        {
            // Piped migrations are independent: report this one and go on with the next.
            ReportFailure(failure);
        }
    }
}
