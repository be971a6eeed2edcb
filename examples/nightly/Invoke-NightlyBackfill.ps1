<#
.SYNOPSIS
    A nightly backfill inside a maintenance window: a little of a large backfill every night,
    resumed the next night where it stopped, until the table is done and in parity.

.DESCRIPTION
    Run by a scheduler (systemd timer, cron, Windows Task Scheduler: see README.md beside this
    script) at the start of the window. It finds the migrations to backfill (by label, -Tag, or
    by -Id) and runs Invoke-Backfill on each with -StopAt the end of the window and -MaxDuration
    a time box: the backfill stops at a batch boundary when either comes, its checkpoint kept,
    and the next night continues from there. When a backfill has reached the end of the table,
    Test-ColumnParity proves it and the migration becomes Verified, ready for its contract; later
    nights then find nothing to do.

    Started outside the window (a late start of a timer that catches up after downtime), it does
    nothing. The window may cross midnight (-WindowStart 23:00 -WindowEnd 05:00). Times are the
    machine's local time.

    The connection comes from the environment, as with psql (PGHOST, PGPORT, PGDATABASE, PGUSER,
    and PGPASSFILE or PGPASSWORD; PGAPPNAME names the job in pg_stat_activity and in the ledger).

    Exit codes: 0 when the work of the night is done (finished, stopped by the window or the time
    box, or nothing to do); 1 on a failure (an unreachable server, a refused backfill, a parity
    mismatch: the error and what to do next are on stderr); 143 when stopped by SIGTERM (systemd
    stopping the job), after the batch in flight committed.

.EXAMPLE
    pwsh -NoProfile -NonInteractive -File Invoke-NightlyBackfill.ps1 -Tag release-42 -WindowStart 01:00 -WindowEnd 05:00 -MaxDuration 3.5h
#>
[CmdletBinding(DefaultParameterSetName = 'Tag')]
param(
    # The label the migrations were started with (New-ColumnRename -Tag).
    [Parameter(Mandatory, ParameterSetName = 'Tag')] [string] $Tag,
    [Parameter(Mandatory, ParameterSetName = 'Id')] [long[]] $Id,
    # The maintenance window, as local times of day ('01:00', '23:30').
    [string] $WindowStart = '01:00',
    [string] $WindowEnd = '05:00',
    # A time box for each backfill, however the window is set ('3.5h', '90m', '02:30:00').
    [string] $MaxDuration = '4h',
    # Throttles passed to Invoke-Backfill when given (its defaults otherwise).
    [string] $TargetBatchTime,
    [int] $BatchSize,
    [string] $Delay,
    [string] $MaxReplicationLag,
    [int] $MaxLoad,
    # The module by name (installed) or by path.
    [string] $ModulePath = 'ZeroDowntime'
)

$ErrorActionPreference = 'Stop'
Import-Module -Name $ModulePath

function Write-Log([string] $Message) {
    Write-Host "$([datetime]::UtcNow.ToString('yyyy-MM-dd HH:mm:ss'))Z nightly: $Message"
}

# The window around now: [start, end), crossing midnight when the end is not after the start.
$now = Get-Date
$start = $now.Date + [timespan]::Parse($WindowStart)
$end = $now.Date + [timespan]::Parse($WindowEnd)
if ($end -le $start) {
    if ($now -lt $end) { $start = $start.AddDays(-1) } else { $end = $end.AddDays(1) }
}
if ($now -lt $start -or $now -ge $end) {
    Write-Log "outside the maintenance window ($WindowStart to $WindowEnd); nothing done."
    exit 0
}

$migrations = if ($PSCmdlet.ParameterSetName -eq 'Id') { $Id | ForEach-Object { Get-Migration -Id $_ } } else { Get-Migration -Tag $Tag }
$pending = @($migrations | Where-Object { "$($_.Phase)" -in 'Expanded', 'Backfilling', 'Backfilled' })
if ($pending.Count -eq 0) {
    Write-Log "no migration left to backfill ($(@($migrations).Count) found: $((@($migrations) | ForEach-Object { "$($_.Id) $($_.Phase)" }) -join ', '))."
    exit 0
}

$throttles = @{}
foreach ($name in 'TargetBatchTime', 'BatchSize', 'Delay', 'MaxReplicationLag', 'MaxLoad') {
    if ($PSBoundParameters.ContainsKey($name)) { $throttles[$name] = $PSBoundParameters[$name] }
}
Write-Log "window until $($end.ToString('yyyy-MM-dd HH:mm')) (local), time box $MaxDuration; $($pending.Count) migration(s) to backfill."
foreach ($migration in $pending) {
    if ((Get-Date) -ge $end) {
        Write-Log "the window is over; migration $($migration.Id) waits for the next night."
        break
    }
    $result = $migration | Invoke-Backfill -StopAt $end -MaxDuration $MaxDuration @throttles -Confirm:$false
    if ("$($result.Phase)" -eq 'Backfilled') {
        # A mismatch is a NotInParity error: under 'Stop' it ends the script with exit code 1.
        $parity = $result | Test-ColumnParity
        Write-Log "migration $($migration.Id) backfilled and in parity ($($parity.RowsChecked) rows): ready for Complete-Contract."
    }
    else {
        Write-Log "migration $($migration.Id) stopped at $($result.RowsBackfilled) rows ($($result.Backfill.Reason)); the next night continues."
        # Stopped by the window or the time box: the next migration waits for the next night too.
        break
    }
}
