<#
.SYNOPSIS
    Stage "Contract" of azure-pipelines.yml: complete the migrations that carry the label -Tag.

.DESCRIPTION
    Finds this release's migrations by their label (Get-Migration -Tag, set by
    Start-ColumnRename.ps1 in the Expand stage) and completes each: Complete-Contract drops the old
    column and its sync trigger. Runs after the application release that uses the new name, behind
    the environment's approval. Run again (a retried stage), a migration already Completed is left
    as it is. Refused while a migration is not Verified (its backfill or parity is not done: the
    error says what to run), when no migration has the label, and when a lock cannot be had within
    -LockRetryTimeout (nothing changed then; run the stage again).

    With -ApprovedPlan (the contract.sql that Start-ColumnRename.ps1 -PlanDirectory wrote and the
    approver reviewed), each contract runs only if the SQL planned now is that file's plan for the
    migration; otherwise the step fails with PlanNotApproved and nothing is dropped.

    Connection from PG* as in Start-ColumnRename.ps1. Exit code 0 when every labelled migration is
    Completed; 1 on any failure.

.EXAMPLE
    pwsh -NonInteractive -File Complete-ColumnRename.ps1 -Tag release-42 -ResultFile TestResults/contract.xml
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Tag,
    [string] $LockRetryTimeout = '3m',
    # The reviewed plan file (contract.sql); without it the contract runs whatever it plans now.
    [string] $ApprovedPlan,
    [string] $ResultFile,
    [string] $ModulePath = 'ZeroDowntime'
)

$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'PipelineSteps.ps1')
Import-Module -Name $ModulePath

try {
    $migrations = Invoke-PipelineStep -Name "Find the migrations labelled $Tag" -ScriptBlock {
        # Undone or failed ones were given up; they are not this release's to complete.
        $found = @(Get-Migration -Tag $Tag | Where-Object { "$($_.Phase)" -notin 'Undone', 'Failed' })
        if ($found.Count -eq 0) {
            $record = [System.Management.Automation.ErrorRecord]::new(
                [System.InvalidOperationException]::new("No migration is labelled '$Tag'."), 'NoMigrationWithTag', 'ObjectNotFound', $Tag)
            $record.ErrorDetails = [System.Management.Automation.ErrorDetails]::new("No migration is labelled '$Tag'.")
            $record.ErrorDetails.RecommendedAction = "Check that the Expand stage of this run succeeded with -Tag '$Tag' (Get-Migration -Tag '$Tag' lists the migrations of a label)."
            throw $record
        }
        $found
    }
    foreach ($migration in $migrations) {
        if ("$($migration.Phase)" -eq 'Completed') {
            Write-Host "Migration $($migration.Id) ($($migration.Table).$($migration.Column) -> $($migration.NewName)) is already completed."
            continue
        }
        $null = Invoke-PipelineStep -Name "Contract migration $($migration.Id) ($($migration.Table).$($migration.Column) -> $($migration.NewName))" -ScriptBlock {
            $approval = if ($ApprovedPlan) { @{ ExpectedPlan = $ApprovedPlan } } else { @{} }
            $migration | Complete-Contract -LockRetryTimeout $LockRetryTimeout @approval -Confirm:$false
        }
    }
    Get-Migration -Tag $Tag | Format-Table -Property Id, Tag, Table, Column, NewName, Phase
}
finally {
    Write-PipelineStepResult -Path $ResultFile -Suite "ZeroDowntime contract $Tag"
}
