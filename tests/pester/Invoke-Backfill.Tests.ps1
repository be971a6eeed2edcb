# Pester 5. Invoke-Backfill as a user meets it: the batched, resumable backfill of a migration.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Invoke-Backfill' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Invoke-Backfill | Should -Be @(
                'TargetBatchTime [TimeSpan]',
                'BatchSize [Int32]',
                'Delay [TimeSpan]',
                'MaxReplicationLag [TimeSpan]',
                'MaxBatches [Int32]',
                'MaxLoad [Int32]',
                'MaxImpact [Int32]',
                'MaxDuration [TimeSpan]',
                'StopAt [DateTime]',
                'SkipVacuum [SwitchParameter]',
                'Id [Int64] Mandatory Position=0 ByPropertyName',
                'LockTimeout [TimeSpan]',
                'LockRetryTimeout [TimeSpan]',
                'PlanOnly [SwitchParameter]',
                'PlanPath [String]',
                'ExpectedPlan [String]',
                'ConnectionString [String] ByPropertyName',
                'Credential [PSCredential]',
                'Connection [ConnectionTarget] ByPropertyName',
                'LedgerSchema [String]'
            )
        }

        It 'has help: a synopsis, every parameter described, an example' {
            Assert-ZdtCommandHelp -Name Invoke-Backfill
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name Invoke-Backfill).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name Invoke-Backfill).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
        }
    }

    Context 'against a database' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtTestTable -Table $table
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table -AlsoDrop "${table}_new", "${table}_parent"
        }


        It 'binds -Id (and the connection) by property name from the migration New-ColumnRename outputs' {
            $done = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false | Invoke-Backfill -Confirm:$false
            "$($done.Phase)" | Should -Be 'Backfilled'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS DISTINCT FROM customer;" | Should -Be '0'
        }

        It 'binds from any object with Id and ConnectionString properties' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $done = [pscustomobject]@{ Id = $migration.Id; ConnectionString = $cs } | Invoke-Backfill -Confirm:$false
            $done.Id | Should -Be $migration.Id
            "$($done.Phase)" | Should -Be 'Backfilled'
        }

        It '-WhatIf prints what it would fill and writes no row' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $whatIf = Get-ZdtWhatIfText { Invoke-Backfill -ConnectionString $cs -Id $($migration.Id) -WhatIf }
            $whatIf | Should -Match 'What if:'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NULL;" | Should -Be '50'
            "$((Get-Migration -ConnectionString $cs -Id $migration.Id).Phase)" | Should -Be 'Expanded'
        }

        It '-WhatIf shows the VACUUM (ANALYZE) that ends the backfill; with -SkipVacuum it is not in the plan' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $whatIf = Get-ZdtWhatIfText { Invoke-Backfill -ConnectionString $cs -Id $($migration.Id) -WhatIf }
            $whatIf | Should -Match ([regex]::Escape("VACUUM (ANALYZE) `"public`".`"$table`";"))
            $whatIf | Should -Match 'takes SHARE UPDATE EXCLUSIVE'
            $skipped = Get-ZdtWhatIfText { Invoke-Backfill -ConnectionString $cs -Id $($migration.Id) -SkipVacuum -WhatIf }
            $skipped | Should -Match 'What if:'
            $skipped | Should -Not -Match 'VACUUM'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NULL;" | Should -Be '50'
        }

        It 'vacuums the table once it is filled; -SkipVacuum fills it and leaves the vacuum to autovacuum' {
            $vacuumed = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false | Invoke-Backfill -Confirm:$false
            "$($vacuumed.Phase)" | Should -Be 'Backfilled'
            # Before PostgreSQL 15 the statistics arrive a moment later.
            $lastVacuum = { Invoke-Psql "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relid = 'public.$table'::regclass;" }
            foreach ($i in 1..25) { if ((& $lastVacuum) -eq 't') { break }; Start-Sleep -Milliseconds 200 }
            & $lastVacuum | Should -Be 't'

            $other = New-ZdtTableName
            New-ZdtTestTable -Table $other
            try {
                Invoke-Psql "ALTER TABLE public.$other SET (autovacuum_enabled = off);"
                $skipped = New-ColumnRename -ConnectionString $cs -Table $other -Column customer -NewName client -Confirm:$false | Invoke-Backfill -SkipVacuum -Confirm:$false
                "$($skipped.Phase)" | Should -Be 'Backfilled'
                Invoke-Psql "SELECT count(*) FROM public.$other WHERE client IS DISTINCT FROM customer;" | Should -Be '0'
                Start-Sleep -Milliseconds 700
                Invoke-Psql "SELECT last_vacuum IS NULL FROM pg_stat_user_tables WHERE relid = 'public.$other'::regclass;" | Should -Be 't'
            }
            finally {
                Remove-ZdtTestTable -Table $other -AlsoDrop "${other}_new", "${other}_parent"
            }
        }

        It 'writes progress while it fills, batch by batch' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $run = Get-ZdtProgressRecords -Script 'Invoke-Backfill -ConnectionString $cs -Id $id -BatchSize 10 -Confirm:$false' -Variables @{ cs = $cs; id = $migration.Id }
            $run.Errors | Should -BeNullOrEmpty
            $run.Progress.Count | Should -BeGreaterThan 1
            $run.Progress[0].Activity | Should -BeLike "Backfill*$table*"
            @($run.Progress | Where-Object { $_.StatusDescription -match 'rows' }).Count | Should -BeGreaterThan 0
        }

        It '-MaxBatches stops early and a second run resumes to the end' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $partial = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -BatchSize 10 -MaxBatches 2 -Confirm:$false -WarningAction SilentlyContinue
            "$($partial.Phase)" | Should -Not -Be 'Backfilled'
            [int](Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NULL;") | Should -BeGreaterThan 0
            $done = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false
            "$($done.Phase)" | Should -Be 'Backfilled'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NULL;" | Should -Be '0'
        }

        It '-MaxDuration stops at a batch boundary, says so, keeps the checkpoint, and a second run resumes to parity 0' {
            Invoke-Psql "INSERT INTO public.$table (customer, qty) SELECT 'c' || g, g FROM generate_series(1, 3000) g;"
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $partial = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -BatchSize 50 -Delay 00:00:00.05 -MaxDuration 00:00:01 -Confirm:$false -WarningVariable stopped -WarningAction SilentlyContinue
            "$($partial.Phase)" | Should -Be 'Backfilling'
            "$($partial.Backfill.State)" | Should -Be 'Stopped'
            "$stopped" | Should -Match "time box.*run Invoke-Backfill -Id $($migration.Id) again"
            [int](Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NULL;") | Should -BeGreaterThan 0
            $done = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false
            "$($done.Phase)" | Should -Be 'Backfilled'
            (Test-ColumnParity -ConnectionString $cs -Id $migration.Id).Mismatches | Should -Be 0
        }

        It '-StopAt in the past stops before the first batch' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $partial = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -StopAt (Get-Date).AddMinutes(-1) -Confirm:$false -WarningAction SilentlyContinue
            "$($partial.Phase)" | Should -Be 'Backfilling'
            $partial.Backfill.Reason | Should -Match 'StopAt'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NULL;" | Should -Be '50'
        }

        It '-MaxLoad with room to spare runs to the end' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $done = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -MaxLoad 1000 -Confirm:$false
            "$($done.Phase)" | Should -Be 'Backfilled'
            "$($done.Backfill.State)" | Should -Be 'Finished'
        }

        It 'SIGTERM to a pwsh -File process stops after the batch in flight (exit 143, checkpoint kept); a second run finishes to parity 0' -Skip:$IsWindows {
            Invoke-Psql "INSERT INTO public.$table (customer, qty) SELECT 'c' || g, g FROM generate_series(1, 5000) g;"
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $quote = { param($text) "'" + ($text -replace "'", "''") + "'" }
            $file = Join-Path ([System.IO.Path]::GetTempPath()) ("zdt-sigterm-{0}.ps1" -f [guid]::NewGuid().ToString('N'))
            Set-Content -Path $file -Encoding utf8 -Value @"
Import-Module -Name $(& $quote $script:ZdtModuleDirectory)
Invoke-Backfill -ConnectionString $(& $quote $cs) -Id $($migration.Id) -BatchSize 10 -Delay 00:00:00.02 -Confirm:`$false | Out-Null
'the script went on after SIGTERM'
"@
            $start = [System.Diagnostics.ProcessStartInfo]::new()
            $apphost = Join-Path $PSHOME 'pwsh'
            if (Test-Path -Path $apphost) { $start.FileName = $apphost }
            else { $start.FileName = 'dotnet'; $start.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
            foreach ($argument in '-NoProfile', '-NonInteractive', '-File', $file) { $start.ArgumentList.Add($argument) }
            $start.RedirectStandardOutput = $true
            $start.RedirectStandardError = $true
            $process = [System.Diagnostics.Process]::Start($start)
            try {
                $stdout = $process.StandardOutput.ReadToEndAsync()
                $stderr = $process.StandardError.ReadToEndAsync()
                # Starting pwsh and the module takes a while on a loaded machine; this only bounds a hang.
                $deadline = (Get-Date).AddSeconds(180)
                while ([long](Invoke-Psql "SELECT rows_backfilled FROM zdt.migration WHERE id = $($migration.Id);") -eq 0) {
                    (Get-Date) | Should -BeLessThan $deadline
                    Start-Sleep -Milliseconds 100
                }
                & kill -TERM $process.Id
                $process.WaitForExit(60000) | Should -BeTrue
                $process.ExitCode | Should -Be 143
                $output = $stdout.Result + $stderr.Result
                $output | Should -Match "stopped at a batch boundary.*SIGTERM.*run Invoke-Backfill -Id $($migration.Id) again"
                $output | Should -Not -Match 'the script went on'
            }
            finally {
                if (-not $process.HasExited) { $process.Kill() }
                Remove-Item -Path $file -ErrorAction SilentlyContinue
            }

            Invoke-Psql "SELECT phase, backfill_status ->> 'State' FROM zdt.migration WHERE id = $($migration.Id);" | Should -Be 'backfilling|Stopped'
            $kept = [long](Invoke-Psql "SELECT rows_backfilled FROM zdt.migration WHERE id = $($migration.Id);")
            [long](Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NOT NULL;") | Should -Be $kept
            $done = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false
            "$($done.Phase)" | Should -Be 'Backfilled'
            (Test-ColumnParity -ConnectionString $cs -Id $migration.Id).Mismatches | Should -Be 0
        }

        It 'Ctrl+C (PowerShell stopping the pipeline) also stops after the batch in flight commits, checkpoint kept; a second run finishes to parity 0' {
            Invoke-Psql "INSERT INTO public.$table (customer, qty) SELECT 'c' || g, g FROM generate_series(1, 5000) g;"
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            # A second PowerShell in this process: Stop() is what Ctrl+C does to the pipeline at a prompt.
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddCommand('Import-Module').AddParameter('Name', $script:ZdtModuleDirectory).AddStatement()
                $null = $ps.AddCommand('Invoke-Backfill').AddParameter('ConnectionString', $cs).AddParameter('Id', $migration.Id).AddParameter('BatchSize', 10).AddParameter('Delay', '20ms').AddParameter('Confirm', $false)
                $async = $ps.BeginInvoke()
                # Starting pwsh and the module takes a while on a loaded machine; this only bounds a hang.
                $deadline = (Get-Date).AddSeconds(180)
                while ([long](Invoke-Psql "SELECT rows_backfilled FROM zdt.migration WHERE id = $($migration.Id);") -eq 0) {
                    (Get-Date) | Should -BeLessThan $deadline
                    Start-Sleep -Milliseconds 100
                }
                $ps.Stop()
                $async.AsyncWaitHandle.WaitOne(30000) | Should -BeTrue
            }
            finally {
                $ps.Dispose()
            }

            # Stopped by request at a batch boundary, not cancelled mid-batch ("interrupted ... rolled back").
            Invoke-Psql "SELECT phase, backfill_status ->> 'State' FROM zdt.migration WHERE id = $($migration.Id);" | Should -Be 'backfilling|Stopped'
            Invoke-Psql "SELECT backfill_status ->> 'Reason' FROM zdt.migration WHERE id = $($migration.Id);" | Should -Match 'stop requested \(SIGTERM or Ctrl\+C\).*again to continue'
            $kept = [long](Invoke-Psql "SELECT rows_backfilled FROM zdt.migration WHERE id = $($migration.Id);")
            $kept | Should -BeLessThan 5050
            [long](Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NOT NULL;") | Should -Be $kept
            $done = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false
            "$($done.Phase)" | Should -Be 'Backfilled'
            (Test-ColumnParity -ConnectionString $cs -Id $migration.Id).Mismatches | Should -Be 0
        }

        It 'an unknown migration is an ObjectNotFound error about that id; with -ErrorAction Stop it throws' {
            $record = { Invoke-Backfill -ConnectionString $cs -Id 987654321 -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId MigrationNotFound -Category ObjectNotFound -Command Invoke-Backfill -TargetObject '987654321'
        }

        It '-MaxImpact with an explicit pace is refused before anything runs' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $record = { Invoke-Backfill -ConnectionString $cs -Id $migration.Id -MaxImpact 15 -BatchSize 10 -Confirm:$false } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId MaxImpactNeedsAdaptiveThrottle -Category InvalidArgument -Command Invoke-Backfill -TargetObject '15' -MessageLike '*-MaxImpact limits the adaptive throttle*Nothing was changed*'
            $record.ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NULL;" | Should -Be '50'
            "$((Get-Migration -ConnectionString $cs -Id $migration.Id).Phase)" | Should -Be 'Expanded'
        }

        It '-MaxImpact with the adaptive throttle runs to the end' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $done = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -MaxImpact 15 -Confirm:$false
            "$($done.Phase)" | Should -Be 'Backfilled'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NULL;" | Should -Be '0'
            { Invoke-Backfill -ConnectionString $cs -Id $migration.Id -MaxImpact 51 -Confirm:$false } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
        }

        It '-BatchSize rejects zero before anything runs' {
            { Invoke-Backfill -ConnectionString $cs -Id 1 -BatchSize 0 -Confirm:$false } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
        }
    }
}
