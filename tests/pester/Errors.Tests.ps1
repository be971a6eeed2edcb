# Pester 5. The module's one error contract (README, "Errors and exit codes"): a failure about one
# input object is non-terminating (the next piped object is still processed); a failure no input
# can escape (connection, authentication, an untrusted ledger) terminates the command; every error
# record says what to do next (RecommendedAction); -ErrorAction Stop makes every one throw.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection
    # Nothing listens on port 1: the connection is refused at once.
    $unreachable = 'Host=127.0.0.1;Port=1;Database=nowhere;Username=nobody;Timeout=3'
}

Describe 'The error contract' {
    It '<Command> reports a missing object as a non-terminating error with a RecommendedAction' -TestCases @(
        @{ Command = 'New-ColumnRename'; Call = { New-ColumnRename -ConnectionString $cs -Table zdt_no_such_table -Column a -NewName b -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'TableNotFound' }
        @{ Command = 'New-TableRename'; Call = { New-TableRename -ConnectionString $cs -Table zdt_no_such_table -NewName b -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'TableNotFound' }
        @{ Command = 'New-ColumnTypeChange'; Call = { New-ColumnTypeChange -ConnectionString $cs -Table zdt_no_such_table -Column a -Type bigint -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'TableNotFound' }
        @{ Command = 'Complete-VersionContract'; Call = { Complete-VersionContract -ConnectionString $cs -VersionSchema zdt_no_such_version -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'VersionNotFound' }
        @{ Command = 'Invoke-SafeDdl'; Call = { Invoke-SafeDdl -ConnectionString $cs -Sql 'ALTER TABLE zdt_no_such_table ADD COLUMN x int' -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'TableNotFound' }
        @{ Command = 'New-Index'; Call = { New-Index -ConnectionString $cs -Table zdt_no_such_table -Column a -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'TableNotFound' }
        @{ Command = 'Remove-Index'; Call = { Remove-Index -ConnectionString $cs -Name zdt_no_such_index -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'IndexNotFound' }
        @{ Command = 'Invoke-Backfill'; Call = { Invoke-Backfill -ConnectionString $cs -Id 987654321 -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'MigrationNotFound' }
        @{ Command = 'Complete-Contract'; Call = { Complete-Contract -ConnectionString $cs -Id 987654321 -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'MigrationNotFound' }
        @{ Command = 'Test-ColumnParity'; Call = { Test-ColumnParity -ConnectionString $cs -Id 987654321 -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'MigrationNotFound' }
        @{ Command = 'Get-Migration'; Call = { Get-Migration -ConnectionString $cs -Id 987654321 -ErrorAction SilentlyContinue -ErrorVariable failures }; ErrorId = 'MigrationNotFound' }
    ) {
        $failures = $null
        $reached = $false
        . $Call
        $reached = $true
        $reached | Should -BeTrue -Because '-ErrorAction SilentlyContinue lets the script go on after a non-terminating error'
        @($failures).Count | Should -Be 1
        $failures[0].FullyQualifiedErrorId | Should -BeLike "$ErrorId,*"
        $failures[0].ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
    }

    It 'an unreachable server ends the command with a terminating error, whatever -ErrorAction says' {
        $caught = $null
        try {
            Get-Migration -ConnectionString $unreachable -Active -ErrorAction SilentlyContinue
        }
        catch {
            $caught = $_
        }
        $caught | Should -Not -BeNullOrEmpty
        $caught.FullyQualifiedErrorId | Should -BeLike 'ConnectionFailed,*'
        $caught.ErrorDetails.RecommendedAction | Should -Match 'reachable'
    }

    It 'piped statements of Invoke-SafeDdl after a failed one are reported as skipped, not run' {
        $table = New-ZdtTableName
        New-ZdtTestTable -Table $table
        try {
            $statements = "ALTER TABLE public.$table ADD COLUMN qty int", "ALTER TABLE public.$table ADD COLUMN later int"
            $statements | Invoke-SafeDdl -ConnectionString $cs -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures | Out-Null
            @($failures).Count | Should -Be 2
            $failures[1].FullyQualifiedErrorId | Should -BeLike 'SkippedAfterFailure,*'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
        }
        finally {
            Remove-ZdtTestTable -Table $table
        }
    }
}
