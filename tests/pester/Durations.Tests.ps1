# Pester 5. Every duration parameter goes through one converter ([Duration]): a TimeSpan, a number
# with its unit ('500ms', '2m') or a TimeSpan string ('00:00:00.5'); a bare number is refused with
# a message, because PowerShell alone would read it as ticks (-Delay 500 = 50 microseconds).

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection
    $durationType = [ZeroDowntime.PowerShell.Adapter.DurationAttribute]
}

Describe 'Duration parameters' {
    It 'every TimeSpan parameter of every cmdlet has the converter' {
        $missing = foreach ($command in Get-Command -Module ZeroDowntime) {
            foreach ($parameter in $command.Parameters.Values | Where-Object { $_.ParameterType -eq [timespan] }) {
                if (-not ($parameter.Attributes | Where-Object { $_ -is $durationType })) { "$($command.Name) -$($parameter.Name)" }
            }
        }
        $missing | Should -BeNullOrEmpty
    }

    It "'<Text>' reads as <Milliseconds> ms" -TestCases @(
        @{ Text = '500ms'; Milliseconds = 500 }
        @{ Text = '1.5s'; Milliseconds = 1500 }
        @{ Text = '2m'; Milliseconds = 120000 }
        @{ Text = '1h'; Milliseconds = 3600000 }
        @{ Text = '00:00:00.5'; Milliseconds = 500 }
        @{ Text = '00:02:00'; Milliseconds = 120000 }
    ) {
        $durationType::Parse($Text).TotalMilliseconds | Should -Be $Milliseconds
    }

    It '-Delay 500 (a bare number) is refused with a message saying why, before anything runs' {
        $record = { Invoke-Backfill -ConnectionString $cs -Id 1 -Delay 500 -WhatIf } | Should -Throw -PassThru
        $record.FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentTransformationError,*'
        $record.Exception.Message | Should -Match 'bare number'
        $record.Exception.Message | Should -Match "'500ms'"
    }

    It "-LockRetryTimeout '30' (a bare number as text) is refused too" {
        { New-TableRename -ConnectionString $cs -Table t -NewName u -LockRetryTimeout '30' -WhatIf } | Should -Throw '*bare number*'
    }

    It "-Delay '200ms' pauses that long after every batch (a backfill of 5 batches takes at least 4 pauses)" {
        $table = New-ZdtTableName
        New-ZdtTestTable -Table $table -Rows 50
        try {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            $done = $migration | Invoke-Backfill -BatchSize 10 -Delay '200ms' -Confirm:$false
            $watch.Stop()
            "$($done.Phase)" | Should -Be 'Backfilled'
            # Not a performance bound: a lower bound that 500 ticks (50 microseconds) could never reach.
            $watch.Elapsed.TotalMilliseconds | Should -BeGreaterThan 800
        }
        finally {
            Remove-ZdtTestTable -Table $table
        }
    }

    It "-LockTimeout '0ms' is outside the allowed range (0 would disable PostgreSQL's lock timeout)" {
        { New-TableRename -ConnectionString $cs -Table t -NewName u -LockTimeout '0ms' -WhatIf } | Should -Throw '*outside the allowed range*'
    }
}
