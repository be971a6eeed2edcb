# Pester 5. What an unattended run leaves in its log: timestamped Information lines (shown without
# -Verbose, kept by `*> log.txt`) with rows, rate and ETA of long work, and a closing summary.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection
}

Describe 'Log lines of long work' {
    BeforeEach {
        $table = New-ZdtTableName
        New-ZdtTestTable -Table $table -Rows 20000
        Invoke-Psql "ANALYZE public.$table;" | Out-Null
    }

    AfterEach {
        Remove-ZdtTestTable -Table $table
    }

    It 'a backfill run by pwsh -File with *> log.txt logs rows, rate and ETA with timestamps, and a closing line' {
        $log = Join-Path ([System.IO.Path]::GetTempPath()) "zdt-log-$([guid]::NewGuid().ToString('N')).txt"
        try {
            $run = Invoke-ZdtScriptFile -WithModule @"
`$ErrorActionPreference = 'Stop'
& {
    `$m = New-ColumnRename -ConnectionString `$cs -Table $table -Column customer -NewName client -Confirm:`$false
    `$m | Invoke-Backfill -BatchSize 2000 -Confirm:`$false | Out-Null
} *> '$log'
"@
            $run.ExitCode | Should -Be 0
            $lines = Get-Content -Path $log
            $progress = @($lines | Where-Object { $_ -match '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ Backfill .*rows, [\d,]+ rows/s.*ETA' })
            $progress.Count | Should -BeGreaterThan 0 -Because ($lines -join "`n")
            $lines | Where-Object { $_ -match 'Z Backfill .*: done in' } | Should -Not -BeNullOrEmpty
            $lines | Where-Object { $_ -match 'Z Backfill done: Migration \d+: .*\(Backfilled\)' } | Should -Not -BeNullOrEmpty
            $lines | Where-Object { $_ -match '^VERBOSE' } | Should -BeNullOrEmpty -Because 'the log lines need no -Verbose'
        }
        finally {
            Remove-Item -Path $log -ErrorAction SilentlyContinue
        }
    }

    It 'a backfill stopped by -MaxBatches says where it stopped and how to continue' {
        $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
        $null = $migration | Invoke-Backfill -BatchSize 1000 -MaxBatches 2 -Confirm:$false -InformationVariable info 6>$null
        $text = ($info | ForEach-Object { "$($_.MessageData)" }) -join "`n"
        $text | Should -Match 'stopped at 2,000 of ~20,000 rows.*run the same command again to continue'
        @($info)[0].Tags | Should -Contain 'ZeroDowntime'
    }

    It 'lock attempts and their blockers are logged without -Verbose' {
        # A session holding a lock on the table for 3 s: the rename's first attempts time out.
        $holder = Start-ThreadJob -ScriptBlock {
            param($uri, $table)
            & psql $uri -X -q -c "BEGIN; LOCK TABLE public.$table IN ACCESS SHARE MODE; SELECT pg_sleep(3); COMMIT;" | Out-Null
        } -ArgumentList (ConvertTo-ZdtPsqlUri $cs), $table
        try {
            Start-Sleep -Milliseconds 700
            $null = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false -InformationVariable info 6>$null
            $text = ($info | ForEach-Object { "$($_.MessageData)" }) -join "`n"
            $text | Should -Match 'Z .*could not get ACCESS EXCLUSIVE .* \(attempt \d+\); .*Retrying in'
        }
        finally {
            $holder | Wait-Job | Remove-Job
            Remove-ZdtTestTable -Table "${table}_new"
        }
    }
}
