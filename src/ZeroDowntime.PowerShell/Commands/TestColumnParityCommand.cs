using System.Globalization;
using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Verify phase of a column rename by copy: counts the rows whose old and new column differ (of an
/// Add-Column with a backfill: the rows that existed before it and are not filled yet). Changes
/// no table data (only the ledger records the result and moves Backfilled to Verified), so no
/// ShouldProcess. The result pipes into Complete-Contract, which checks parity again by itself.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "ColumnParity", HelpUri = HelpLinks.Base + "test-columnparity")]
[OutputType(typeof(ParityResult))]
public sealed class TestColumnParityCommand : ZdtCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("MigrationId")]
    [ValidateRange(1L, long.MaxValue)]
    [ArgumentCompleter(typeof(MigrationIdCompleter))]
    public long Id { get; set; }

    protected override object? ErrorTarget => Id;

    protected override void ProcessRecord()
    {
        try
        {
            var result = RunEngine((engine, ct) => engine.TestColumnParityAsync(Id, ct));
            // The result goes down the pipeline either way (Invoke-Backfill or Complete-Contract
            // may follow); a mismatch is then an error, because the caller asked for parity.
            WriteObject(result);
            if (!result.InParity)
            {
                WriteError(EngineErrors.Create(ErrorIds.NotInParity, ErrorKind.InvalidData, NotInParityMessage(result), result.Id));
            }
        }
        catch (EngineFailedException failure)
        {
            // Piped migrations are independent: report this one and go on with the next.
            ReportFailure(failure);
        }
    }

    private static string NotInParityMessage(ParityResult result)
    {
        var samples = result.SampleKeys.Count > 0
            ? string.Format(CultureInfo.InvariantCulture, " Keys of some of them: {0}.", string.Join(", ", result.SampleKeys))
            : "";
        return string.Format(
            CultureInfo.InvariantCulture,
            "Migration {0} is not in parity: {1:N0} of {2:N0} rows of {3}.{4} {5}.{6} Run Invoke-Backfill, then Test-ColumnParity again; Complete-Contract refuses until there are no mismatches.",
            result.Id,
            result.Mismatches,
            result.RowsChecked,
            result.Schema,
            result.Table,
            result.MismatchMeaning,
            samples);
    }
}
