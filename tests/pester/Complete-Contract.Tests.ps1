# Pester 5. Complete-Contract as a user meets it: the contract phase, which drops what kept the old schema working.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Complete-Contract' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Complete-Contract | Should -Be @(
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
            Assert-ZdtCommandHelp -Name Complete-Contract
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact High' {
            $attribute = (Get-Command -Name Complete-Contract).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'High'
        }

        It 'declares its output type' {
            (Get-Command -Name Complete-Contract).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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


        It '-WhatIf prints the contract SQL and drops nothing' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            $whatIf = Get-ZdtWhatIfText { Complete-Contract -ConnectionString $cs -Id $($migration.Id) -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match ([regex]::Escape("DROP VIEW ""public"".""$table"""))
            Invoke-Psql "SELECT relkind FROM pg_class WHERE oid = 'public.$table'::regclass;" | Should -Be 'v'
        }

        It 'asks for confirmation (ConfirmImpact High): a non-interactive script without -Confirm:$false fails and drops nothing' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            $run = Invoke-ZdtScriptFile -WithModule "`$ErrorActionPreference = 'Stop'; Complete-Contract -ConnectionString `$cs -Id $($migration.Id)"
            $run.ExitCode | Should -Not -Be 0
            $run.Output | Should -Match 'NonInteractive'
            Invoke-Psql "SELECT relkind FROM pg_class WHERE oid = 'public.$table'::regclass;" | Should -Be 'v'
            "$((Get-Migration -ConnectionString $cs -Id $migration.Id).Phase)" | Should -Be 'Expanded'
        }

        It 'binds the migration from the pipeline ($m | Complete-Contract) and outputs it Completed' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            $done = $migration | Complete-Contract -Confirm:$false
            $done | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            "$($done.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_class WHERE relname = '$table';" | Should -Be '0'
        }

        It 'run again on a Completed migration (a retried stage) is a no-op that says so: no error, no prompt, the migration output' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            $migration | Complete-Contract -Confirm:$false | Out-Null
            $again = Complete-Contract -ConnectionString $cs -Id $migration.Id -InformationVariable log -ErrorVariable problems
            $problems | Should -BeNullOrEmpty
            $again.Id | Should -Be $migration.Id
            "$($again.Phase)" | Should -Be 'Completed'
            ($log -join "`n") | Should -Match "Migration $($migration.Id) .*was already completed at .*: nothing to run"
            $run = Invoke-ZdtScriptFile -WithModule "`$ErrorActionPreference = 'Stop'; Complete-Contract -ConnectionString `$cs -Id $($migration.Id)"
            $run.ExitCode | Should -Be 0
        }

        It 'completes what Get-Migration -Active finds (README)' {
            New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false | Out-Null
            $done = Get-Migration -ConnectionString $cs -Table $table -Active | Complete-Contract -Confirm:$false
            "$($done.Phase)" | Should -Be 'Completed'
        }

        It 'refuses a column rename that is not verified, with an error naming the phase, and changes nothing' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $record = { Complete-Contract -ConnectionString $cs -Id $migration.Id -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.FullyQualifiedErrorId | Should -BeLike 'PhaseOutOfOrder,*'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty,client'
        }

        It 'an unknown migration is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Complete-Contract -ConnectionString $cs -Id 987654321 -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId MigrationNotFound -Category ObjectNotFound -Command Complete-Contract -TargetObject '987654321'
        }
    }
}
