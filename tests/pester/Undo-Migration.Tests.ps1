# Pester 5. Undo-Migration as a user meets it: rolling an active migration back.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Undo-Migration' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Undo-Migration | Should -Be @(
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
            Assert-ZdtCommandHelp -Name Undo-Migration
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact High' {
            $attribute = (Get-Command -Name Undo-Migration).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'High'
        }

        It 'declares its output type' {
            (Get-Command -Name Undo-Migration).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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


        It 'undoes what Get-Migration -Active finds (Get-Migration -Active | Undo-Migration)' {
            New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false | Out-Null
            $undone = Get-Migration -ConnectionString $cs -Table $table -Active | Undo-Migration -Confirm:$false
            $undone | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            "$($undone.Phase)" | Should -Be 'Undone'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
            Get-Migration -ConnectionString $cs -Table $table -Active | Should -BeNullOrEmpty
        }

        It '-WhatIf prints the undo SQL and changes nothing' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            $whatIf = Get-ZdtWhatIfText { Undo-Migration -ConnectionString $cs -Id $($migration.Id) -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'RENAME TO'
            Invoke-Psql "SELECT relkind FROM pg_class WHERE oid = 'public.${table}_new'::regclass;" | Should -Be 'r'
        }

        It 'asks for confirmation (ConfirmImpact High): a non-interactive script without -Confirm:$false fails and undoes nothing' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            $run = Invoke-ZdtScriptFile -WithModule "`$ErrorActionPreference = 'Stop'; Undo-Migration -ConnectionString `$cs -Id $($migration.Id)"
            $run.ExitCode | Should -Not -Be 0
            "$((Get-Migration -ConnectionString $cs -Id $migration.Id).Phase)" | Should -Be 'Expanded'
        }

        It 'refuses a completed migration with an error naming the phase' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false | Complete-Contract -Confirm:$false
            $record = { Undo-Migration -ConnectionString $cs -Id $migration.Id -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.FullyQualifiedErrorId | Should -BeLike 'PhaseOutOfOrder,*'
            $record.TargetObject | Should -Not -BeNullOrEmpty
        }

        It 'an unknown migration is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Undo-Migration -ConnectionString $cs -Id 987654321 -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId MigrationNotFound -Category ObjectNotFound -Command Undo-Migration -TargetObject '987654321'
        }
    }
}
