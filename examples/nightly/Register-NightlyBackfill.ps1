<#
.SYNOPSIS
    Registers Invoke-NightlyBackfill.ps1 with the Windows Task Scheduler: every night at the
    window's start, as a service account, with a time limit past the window's end.

.DESCRIPTION
    Run once, elevated, on the Windows machine that runs the job. The task runs
    `pwsh -NoProfile -NonInteractive -File Invoke-NightlyBackfill.ps1 ...` from this folder; its
    exit code (0 done for the night, 1 failed) is the task's "Last Run Result". The connection
    comes from machine environment variables (PGHOST, PGDATABASE, PGUSER, PGAPPNAME) and the
    account's %APPDATA%\postgresql\pgpass.conf: no password in the task's arguments. The log is
    appended to -LogPath by the task's own command line.

    Task Scheduler exists on Windows only: elsewhere this script stops with an error (exit 1).

.EXAMPLE
    .\Register-NightlyBackfill.ps1 -Tag release-42 -User 'CONTOSO\svc-zdt$' -WindowStart 01:00 -WindowEnd 05:00
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)] [string] $Tag,
    # The account the task runs as: a group managed service account (name ending in $) needs no password.
    [Parameter(Mandatory)] [string] $User,
    [string] $WindowStart = '01:00',
    [string] $WindowEnd = '05:00',
    [string] $MaxDuration = '3.5h',
    [string] $TaskName = 'ZeroDowntime nightly backfill',
    [string] $LogPath = 'C:\ProgramData\ZeroDowntime\nightly.log'
)

$ErrorActionPreference = 'Stop'
if (-not $IsWindows) {
    throw 'Register-ScheduledTask is the Windows Task Scheduler: run this on Windows. On Linux use zdt-nightly-backfill.timer or the crontab line beside this script.'
}

$script = Join-Path $PSScriptRoot 'Invoke-NightlyBackfill.ps1'
$pwsh = Join-Path $PSHOME 'pwsh.exe'
# -Command rather than -File, to append every stream to the log; a terminating error (which the
# redirection does not catch) is logged too and gives exit code 1, as under -File.
$command = "try { & '$script' -Tag '$Tag' -WindowStart '$WindowStart' -WindowEnd '$WindowEnd' -MaxDuration '$MaxDuration' *>> '$LogPath' } catch { `$_ | Out-File -Append -FilePath '$LogPath'; exit 1 }; exit `$LASTEXITCODE"
$action = New-ScheduledTaskAction -Execute $pwsh -Argument "-NoProfile -NonInteractive -Command `"$command`"" -WorkingDirectory $PSScriptRoot
$trigger = New-ScheduledTaskTrigger -Daily -At $WindowStart
# Ended by the scheduler past the window (the script stops by itself at the window's end);
# no second instance while one runs; started when missed (it does nothing outside the window).
$window = [timespan]::Parse($WindowEnd) - [timespan]::Parse($WindowStart)
if ($window -le [timespan]::Zero) { $window += [timespan]::FromDays(1) }
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ($window + [timespan]::FromMinutes(15)) -MultipleInstances IgnoreNew -StartWhenAvailable
$principal = if ($User.EndsWith('$')) {
    New-ScheduledTaskPrincipal -UserId $User -LogonType Password -RunLevel Limited
}
else {
    New-ScheduledTaskPrincipal -UserId $User -LogonType S4U -RunLevel Limited
}

$null = New-Item -ItemType Directory -Path (Split-Path -Path $LogPath -Parent) -Force
if ($PSCmdlet.ShouldProcess($TaskName, 'Register-ScheduledTask')) {
    Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Settings $settings -Principal $principal -Description "ZeroDowntime: backfill of the migrations labelled $Tag, $WindowStart to $WindowEnd" -Force
}
