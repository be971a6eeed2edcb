# Pester 5. The default views as a DBA and a CI log see them: at 80 columns (redirected output,
# Azure DevOps logs) the migration table keeps Id, Table, Column, NewName and Phase readable.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection
}

Describe 'Default views at 80 columns' {
    BeforeEach {
        $table = New-ZdtTableName
        New-ZdtTestTable -Table $table
    }

    AfterEach {
        Remove-ZdtTestTable -Table $table
    }

    It 'the migration table fits 80 columns and shows Phase whole' {
        $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
        $migration = $migration | Invoke-Backfill -Confirm:$false
        $lines = @(($migration | Format-Table | Out-String -Width 80) -split "`r?`n" | Where-Object { $_.Trim() })
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 80 }
        $lines[0] | Should -Match '^\s*Id\s+Table\s+Column\s+NewName\s+Phase\s+Operation'
        $lines[2] | Should -Match "^\s*$($migration.Id)\s+$table\s+customer\s+client\s+Backfilled\s+RenameColumn\s*$"
    }

    It 'the event table fits 80 columns and wraps Action instead of cutting it' {
        $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
        $events = (Get-Migration -ConnectionString $cs -Id $migration.Id -IncludeEvents).Events
        $text = $events | Format-Table | Out-String -Width 80
        ($text -split "`r?`n") | ForEach-Object { $_.Length | Should -BeLessOrEqual 80 }
        $text | Should -Match 'At\s+FromPhase\s+ToPhase\s+Action'
        $text | Should -Not -Match '…'
    }
}
