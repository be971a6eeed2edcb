# Pester 5. Remove-MigrationHistory: old finished migrations leave the ledger, active ones never do.
# The surface is pinned (parameters, help, ShouldProcess with ConfirmImpact High, output type); the
# behaviour runs against the test database, with psql to age ledger rows and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Remove-MigrationHistory' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Remove-MigrationHistory | Should -Be @(
                'OlderThan [TimeSpan] Mandatory Position=0',
                'Id [Int64] ByPropertyName',
                'Tag [String]',
                'ConnectionString [String] ByPropertyName',
                'Credential [PSCredential]',
                'Connection [ConnectionTarget] ByPropertyName',
                'LedgerSchema [String]'
            )
        }

        It 'has help: a synopsis, every parameter described, an example' {
            Assert-ZdtCommandHelp -Name Remove-MigrationHistory
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact High' {
            $attribute = (Get-Command -Name Remove-MigrationHistory).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'High'
        }

        It 'declares its output type' {
            (Get-Command -Name Remove-MigrationHistory).OutputType.Name | Should -Be 'ZeroDowntime.Engine.Migration'
        }

        It 'refuses a bare number for -OlderThan' {
            { Remove-MigrationHistory -OlderThan 90 -WhatIf } | Should -Throw -ExpectedMessage '*bare number*'
        }
    }

    Context 'against a database' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
            # Ages a migration's row by the ledger's clock, as if it had finished $Days ago.
            function Set-ZdtMigrationAge([long] $Id, [int] $Days) {
                Invoke-Psql "UPDATE zdt.migration SET updated_at = now() - interval '$Days days' WHERE id = $Id;" | Out-Null
            }
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtTestTable -Table $table
            $tag = "hist-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table -AlsoDrop "${table}_new"
        }

        It 'removes the finished migrations of a tag older than -OlderThan, with their events; keeps younger and active ones; outputs what it removed' {
            $old = New-Index -ConnectionString $cs -Table $table -Column qty -Tag $tag -Confirm:$false
            $young = New-Index -ConnectionString $cs -Table $table -Column customer -Tag $tag -Confirm:$false
            $active = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Tag $tag -Confirm:$false
            Set-ZdtMigrationAge -Id $old.Id -Days 100
            Set-ZdtMigrationAge -Id $active.Id -Days 100

            $removed = @(Remove-MigrationHistory -ConnectionString $cs -OlderThan '90d' -Tag $tag -Confirm:$false -InformationVariable log)
            $removed.Id | Should -Be @($old.Id)
            $removed[0] | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            $removed[0].Events.Count | Should -BeGreaterThan 0 -Because 'the output keeps what was removed, for an archive'
            ($log -join "`n") | Should -Match "Removed 1 finished migration\(s\) older than 90\.00:00:00 from the ledger: $($old.Id)"
            Invoke-Psql "SELECT count(*) FROM zdt.migration WHERE id = $($old.Id);" | Should -Be '0'
            Invoke-Psql "SELECT count(*) FROM zdt.migration_event WHERE migration_id = $($old.Id);" | Should -Be '0'
            (@(Get-Migration -ConnectionString $cs -Tag $tag).Id | Sort-Object) | Should -Be (@($young.Id, $active.Id) | Sort-Object)
            # The active migration still works from its row.
            "$((Complete-Contract -ConnectionString $cs -Id $active.Id -Confirm:$false).Phase)" | Should -Be 'Completed'
        }

        It '-WhatIf lists what would go and removes nothing' {
            $old = New-Index -ConnectionString $cs -Table $table -Column qty -Tag $tag -Confirm:$false
            Set-ZdtMigrationAge -Id $old.Id -Days 100
            $whatIf = Get-ZdtWhatIfText { Remove-MigrationHistory -ConnectionString $cs -OlderThan '90d' -Tag $tag -WhatIf }
            $whatIf | Should -Match "What if: Performing the operation `"Remove from the migration ledger`" on target `"migration $($old.Id) \(CreateIndex of public\.$table, tag '$tag', Completed at .*, \d+ events\)`""
            (Get-Migration -ConnectionString $cs -Id $old.Id).Id | Should -Be $old.Id
        }

        It 'asks for confirmation (ConfirmImpact High): a non-interactive script without -Confirm:$false fails and removes nothing' {
            $old = New-Index -ConnectionString $cs -Table $table -Column qty -Tag $tag -Confirm:$false
            Set-ZdtMigrationAge -Id $old.Id -Days 100
            $run = Invoke-ZdtScriptFile -WithModule "`$ErrorActionPreference = 'Stop'; Remove-MigrationHistory -ConnectionString `$cs -OlderThan '90d' -Tag '$tag'"
            $run.ExitCode | Should -Not -Be 0
            $run.Output | Should -Match 'NonInteractive'
            Invoke-Psql "SELECT count(*) FROM zdt.migration WHERE id = $($old.Id);" | Should -Be '1'
        }

        It 'asked by id (piped from Get-Migration): an active migration is a MigrationNotFinished error and stays; a finished one goes' {
            $active = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Tag $tag -Confirm:$false
            $record = { Get-Migration -ConnectionString $cs -Id $active.Id | Remove-MigrationHistory -OlderThan '0s' -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId MigrationNotFinished -Category InvalidOperation -Command Remove-MigrationHistory -TargetObject "$($active.Id)"
            $record.ErrorDetails.RecommendedAction | Should -Match 'Complete-Contract or Undo-Migration'
            "$((Get-Migration -ConnectionString $cs -Id $active.Id).Phase)" | Should -Be 'Expanded'

            $active | Complete-Contract -Confirm:$false | Out-Null
            (Get-Migration -ConnectionString $cs -Id $active.Id | Remove-MigrationHistory -OlderThan '0s' -Confirm:$false).Id | Should -Be $active.Id
            Invoke-Psql "SELECT count(*) FROM zdt.migration WHERE id = $($active.Id);" | Should -Be '0'
        }

        It 'asked by id for a finished migration younger than -OlderThan: kept, with a line saying so, no error' {
            $young = New-Index -ConnectionString $cs -Table $table -Column qty -Tag $tag -Confirm:$false
            $out = Remove-MigrationHistory -ConnectionString $cs -Id $young.Id -OlderThan '1d' -Confirm:$false -InformationVariable log -ErrorVariable problems
            $out | Should -BeNullOrEmpty
            $problems | Should -BeNullOrEmpty
            ($log -join "`n") | Should -Match "Migration $($young.Id) finished less than 1\.00:00:00 ago: kept"
            Invoke-Psql "SELECT count(*) FROM zdt.migration WHERE id = $($young.Id);" | Should -Be '1'
        }

        It 'an unknown id is a MigrationNotFound error' {
            $record = { Remove-MigrationHistory -ConnectionString $cs -Id 987654321 -OlderThan '0s' -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId MigrationNotFound -Category ObjectNotFound -Command Remove-MigrationHistory -TargetObject '987654321'
        }
    }
}
