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
                'Id [Int64] Mandatory Position=0 ByPropertyName',
                'LockTimeout [TimeSpan]',
                'LockRetryTimeout [TimeSpan]',
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
            (Get-Command -Name Invoke-Backfill).OutputType.Name | Should -Be 'ZeroDowntime.Engine.Migration'
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

        It 'an unknown migration is an ObjectNotFound error about that id; with -ErrorAction Stop it throws' {
            $record = { Invoke-Backfill -ConnectionString $cs -Id 987654321 -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId MigrationNotFound -Category ObjectNotFound -Command Invoke-Backfill -TargetObject '987654321'
        }

        It '-BatchSize rejects zero before anything runs' {
            { Invoke-Backfill -ConnectionString $cs -Id 1 -BatchSize 0 -Confirm:$false } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
        }
    }
}
