using System.Management.Automation;
using ZeroDowntime.Engine;

namespace ZeroDowntime.PowerShell;

/// <summary>
/// The cmdlets that start a migration, and so register a row in the ledger (an expand, or a one
/// shot recorded as completed): they take the caller's label for it.
/// </summary>
public abstract class ZdtMigrationStartCmdletBase : ZdtDdlCmdletBase
{
    /// <summary>
    /// A label stored with the migration (e.g. the release or build: 'release-42'), so a later
    /// pipeline stage finds it with Get-Migration -Tag. Running the same request again with the
    /// same tag returns the migration it started.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ValidateLength(1, MigrationRequest.MaxTagLength)]
    public string? Tag { get; set; }
}
