# Pester 5. The module in scripts run as scheduled tasks and pipeline steps do:
# `pwsh -NonInteractive -File script.ps1`, where only the exit code tells the caller that it failed.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection
}

Describe 'A script run with pwsh -NonInteractive -File' {
    BeforeEach {
        $table = New-ZdtTableName
        New-ZdtTestTable -Table $table
    }

    AfterEach {
        Remove-ZdtTestTable -Table $table -AlsoDrop "${table}_new"
    }

    It 'exits 0 when every command succeeded' {
        $run = Invoke-ZdtScriptFile -WithModule "`$ErrorActionPreference = 'Stop'; New-TableRename -ConnectionString `$cs -Table $table -NewName ${table}_new -Confirm:`$false | Complete-Contract -Confirm:`$false | Out-Null"
        $run.Output | Should -Not -Match 'Exception|Error'
        $run.ExitCode | Should -Be 0
        Invoke-Psql "SELECT relkind FROM pg_class WHERE oid = 'public.${table}_new'::regclass;" | Should -Be 'r'
    }

    It 'exits non-zero, with the error on its output, when a cmdlet fails under $ErrorActionPreference = Stop' -TestCases @(
        @{ Command = 'New-TableRename -ConnectionString $cs -Table nope -NewName x -Confirm:$false'; ErrorId = 'TableNotFound' }
        @{ Command = 'New-Index -ConnectionString $cs -Table nope -Column x -Confirm:$false'; ErrorId = 'TableNotFound' }
        @{ Command = 'Invoke-Backfill -ConnectionString $cs -Id 987654321 -Confirm:$false'; ErrorId = 'MigrationNotFound' }
        @{ Command = 'Get-Migration -ConnectionString $cs -Id 987654321'; ErrorId = 'MigrationNotFound' }
    ) {
        $run = Invoke-ZdtScriptFile -WithModule "`$ErrorActionPreference = 'Stop'`n$Command`n'not reached'"
        $run.ExitCode | Should -Not -Be 0
        $run.Output | Should -Not -Match 'not reached'
        $run.Output | Should -Match 'does not exist|not found|No migration'
    }

    It 'exits non-zero when a cmdlet fails with -ErrorAction Stop' {
        $run = Invoke-ZdtScriptFile -WithModule "Undo-Migration -ConnectionString `$cs -Id 987654321 -Confirm:`$false -ErrorAction Stop`n'not reached'"
        $run.ExitCode | Should -Not -Be 0
        $run.Output | Should -Not -Match 'not reached'
    }
}
