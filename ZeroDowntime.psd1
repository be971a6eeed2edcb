# Module manifest for ZeroDowntime.
# Keep this file to plain data (single-quoted strings, @() arrays, @{} tables): it is read by
# Import-PowerShellDataFile in build.ps1 and parsed by tests/ZeroDowntime.Tests/ModuleSurfaceTests.cs.
@{
    RootModule           = 'ZeroDowntime.PowerShell.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = 'a91d2dc1-bb10-4462-ab0a-22a6cc1c5817'
    Author               = 'ZeroDowntime contributors'
    CompanyName          = 'ZeroDowntime'
    Copyright            = '(c) ZeroDowntime contributors. All rights reserved.'
    Description          = 'Zero-downtime PostgreSQL schema migrations: expand, backfill, verify and contract with lock-safe DDL, a migration ledger, and undo.'
    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.4'
    FormatsToProcess     = @('ZeroDowntime.format.ps1xml')

    # Explicit lists, no wildcards: PowerShell can then auto-load the module from a command name
    # without importing it, and nothing unintended is exported.
    CmdletsToExport      = @(
        'New-TableRename',
        'New-ColumnRename',
        'New-ColumnTypeChange',
        'Invoke-Backfill',
        'Suspend-Backfill',
        'Resume-Backfill',
        'Set-BackfillThrottle',
        'Test-ColumnParity',
        'Complete-Contract',
        'Complete-VersionContract',
        'Undo-Migration',
        'Get-Migration',
        'Remove-MigrationHistory',
        'Add-Column',
        'Set-ColumnNotNull',
        'New-Index',
        'Remove-Index',
        'Add-CheckConstraint',
        'Add-ForeignKey',
        'Add-UniqueConstraint',
        'Add-PrimaryKey',
        'Invoke-SafeDdl'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()

    PrivateData          = @{
        PSData = @{
            Tags         = @('PostgreSQL', 'Migration', 'ZeroDowntime', 'Schema', 'DBA')
            ProjectUri   = 'https://github.com/zerodowntime/ZeroDowntime'
            LicenseUri   = 'https://github.com/zerodowntime/ZeroDowntime/blob/main/LICENSE'
            ReleaseNotes = '0.1.0: first preview. Table rename behind an updatable view (New-TableRename); column rename by copy with a sync trigger, resumable batched backfill and parity proof (New-ColumnRename, Invoke-Backfill, Test-ColumnParity) or zero-copy through version schemas of views (New-ColumnRename -Strategy View, Complete-VersionContract); column type changes on the same column copy, in place when the server needs no rewrite (New-ColumnTypeChange); safe additions (Add-Column, Set-ColumnNotNull, New-Index, Remove-Index, Add-CheckConstraint, Add-ForeignKey, Add-UniqueConstraint, Add-PrimaryKey, Invoke-SafeDdl); contract, undo and the ledger (Complete-Contract, Undo-Migration, Get-Migration). Every DDL step runs with a short lock_timeout and capped retries.'
        }
    }
}
