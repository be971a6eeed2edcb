using System.Globalization;
using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Removes old finished migrations (completed, undone or failed) from the ledger, with their events:
/// the ledger of a database that migrates every release grows without end, and a scheduled task
/// keeps it to what is still worth reading. Never an active migration (its row is what resumes,
/// completes or undoes it). What is removed cannot be brought back, hence ConfirmImpact High; the
/// removed migrations are output as they were (with their events), so they can be archived.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "MigrationHistory", HelpUri = HelpLinks.Base + "remove-migrationhistory", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(Migration))]
public sealed class RemoveMigrationHistoryCommand : ZdtCmdletBase
{
    /// <summary>
    /// Only migrations whose last change (completion, undo or failure) is more than this long ago, by
    /// the server's clock: '90d', '12h'. Always given, also with -Id ('0s' for any age): a removal
    /// says how old is old enough.
    /// </summary>
    [Parameter(Mandatory = true, Position = 0)]
    [Duration]
    [ValidateTimeSpanRange(0, double.MaxValue)]
    public TimeSpan OlderThan { get; set; }

    /// <summary>This migration only (bound by property name from Get-Migration's output); it must be finished (else MigrationNotFinished).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("MigrationId")]
    [ValidateRange(1L, long.MaxValue)]
    public long Id { get; set; }

    /// <summary>Only migrations labelled with this tag (exact).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Tag { get; set; }

    protected override object? ErrorTarget => Id > 0 ? Id : null;

    protected override void ProcessRecord()
    {
        var request = new HistoryRemovalRequest(OlderThan) { Id = Id > 0 ? Id : null, Tag = Tag };
        try
        {
            var found = RunEngine((engine, ct) => engine.FindRemovableHistoryAsync(request, ct));
            if (found.Count == 0)
            {
                WriteLog(request.Id is { } id
                    ? $"Migration {id} finished less than {OlderThan} ago: kept."
                    : $"No finished migration{(Tag is null ? "" : $" labelled '{Tag}'")} is older than {OlderThan}: nothing to remove.");
                return;
            }

            var approved = found.Where(m => ShouldProcess(Describe(m), "Remove from the migration ledger")).ToList();
            if (approved.Count == 0)
            {
                return;
            }

            var removed = RunEngine((engine, ct) => engine.RemoveHistoryAsync(approved.Select(m => m.Id).ToList(), OlderThan, ct)).ToHashSet();
            WriteLog($"Removed {removed.Count} finished migration(s) older than {OlderThan} from the ledger{(removed.Count > 0 ? ": " + string.Join(", ", removed.Order()) : "")}.");
            WriteObject(approved.Where(m => removed.Contains(m.Id)), enumerateCollection: true);
        }
        catch (EngineFailedException failure)
        {
            // Piped migrations are independent: report this one and go on with the next.
            ReportFailure(failure);
        }
    }

    private static string Describe(Migration migration)
        => string.Format(
            CultureInfo.InvariantCulture,
            "migration {0} ({1} of {2}.{3}{4}, {5} at {6:u}, {7} events)",
            migration.Id,
            migration.Operation,
            migration.Schema,
            migration.Table,
            migration.Tag is null ? "" : $", tag '{migration.Tag}'",
            migration.Phase,
            migration.UpdatedAt,
            migration.Events.Count);
}
