<#
.SYNOPSIS
    Stage "Expand" of azure-pipelines.yml: expand a column rename, backfill it and prove parity.

.DESCRIPTION
    Renames -Column of -Table to -NewName by copy: expand (new column, sync trigger), backfill in
    batches, then Test-ColumnParity (a mismatch is an error). The migration carries the label -Tag,
    by which the later "Contract" stage finds it (Complete-ColumnRename.ps1). Run again (a retried
    stage), it continues the migration it started: the same request with the same label returns
    the active migration, the backfill resumes from its checkpoint, and a migration already
    Verified is left as it is.

    The connection comes from the environment, as with psql: PGHOST, PGPORT, PGDATABASE, PGUSER,
    PGPASSWORD (a secret variable, mapped into this step's env) and PGAPPNAME (the build id, so
    pg_stat_activity and the ledger say which run did it).

    With -PlanDirectory, the plans are written there for review, as the pipeline's artifact: the
    expand's SQL (expand.sql, written before it runs) and, once the migration is Verified, the
    contract's (contract.sql: a contract can only be planned then). The Contract stage's approver
    reads contract.sql; Complete-ColumnRename.ps1 -ApprovedPlan then runs only that SQL.

    Exit code 0 when the migration is Verified; 1 on any failure (the error, its id and what to do
    next are on stderr and in -ResultFile).

.EXAMPLE
    pwsh -NonInteractive -File Start-ColumnRename.ps1 -Table orders -Column address -NewName billing_address -Tag release-42 -ResultFile TestResults/expand.xml
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Table,
    [Parameter(Mandatory)] [string] $Column,
    [Parameter(Mandatory)] [string] $NewName,
    # The label of this release's migrations: how the Contract stage finds them.
    [Parameter(Mandatory)] [string] $Tag,
    [string] $Schema = 'public',
    # How long a DDL step may keep retrying for its lock before the stage gives up (nothing changed then).
    [string] $LockRetryTimeout = '3m',
    # Backfill throttles: the time each batch aims at, and the replica lag above which it waits.
    [string] $TargetBatchTime = '100ms',
    [string] $MaxReplicationLag = '30s',
    # JUnit XML of the steps, for PublishTestResults@2 (none when empty).
    [string] $ResultFile,
    # Where to write the plans (expand.sql, contract.sql) for review; none when empty.
    [string] $PlanDirectory,
    # The module by name (installed) or by path (a pipeline artifact).
    [string] $ModulePath = 'ZeroDowntime'
)

$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'PipelineSteps.ps1')
Import-Module -Name $ModulePath

try {
    $expand = @{ Schema = $Schema; Table = $Table; Column = $Column; NewName = $NewName; Tag = $Tag; LockRetryTimeout = $LockRetryTimeout }
    if ($PlanDirectory) {
        # What the expand will run (or, run again, that it has nothing to run), kept with the run.
        $null = New-ColumnRename @expand -PlanPath (Join-Path $PlanDirectory 'expand.sql')
    }
    $migration = Invoke-PipelineStep -Name "Expand $Schema.$Table.$Column -> $NewName" -ScriptBlock {
        New-ColumnRename @expand -Confirm:$false
    }
    # The Contract stage may also find it by id, from this output variable.
    Write-Host "##vso[task.setvariable variable=MigrationId;isOutput=true]$($migration.Id)"

    if ("$($migration.Phase)" -ne 'Verified') {
        $migration = Invoke-PipelineStep -Name "Backfill migration $($migration.Id)" -ScriptBlock {
            $migration | Invoke-Backfill -TargetBatchTime $TargetBatchTime -MaxReplicationLag $MaxReplicationLag -Confirm:$false
        }
        # A mismatch is a NotInParity error, so under 'Stop' it fails the step.
        $parity = Invoke-PipelineStep -Name "Parity of migration $($migration.Id)" -ScriptBlock {
            $migration | Test-ColumnParity
        }
        Write-Host "Parity: $($parity.RowsChecked) rows checked, $($parity.Mismatches) mismatches"
    }
    if ($PlanDirectory) {
        # The contract's SQL, for the approval of the Contract stage: plannable now that parity is proven.
        $contract = $migration | Complete-Contract -LockRetryTimeout $LockRetryTimeout -PlanPath (Join-Path $PlanDirectory 'contract.sql')
        Write-Host "Contract plan for review: $($contract.Steps.Count) steps in $(Join-Path $PlanDirectory 'contract.sql')"
    }
    Get-Migration -Id $migration.Id | Format-List -Property Id, Tag, Table, Column, NewName, Phase, RowsBackfilled, BackfillDuration
}
finally {
    Write-PipelineStepResult -Path $ResultFile -Suite "ZeroDowntime expand $Tag"
}
