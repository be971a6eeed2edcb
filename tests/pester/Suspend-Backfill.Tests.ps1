# Pester 5. Suspend-Backfill: operator control of a migration's backfill from another session, kept on the
# migration's ledger row and read by the running Invoke-Backfill between batches.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Suspend-Backfill' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Suspend-Backfill | Should -Be @(
                'Id [Int64] Mandatory Position=0 ByPropertyName',
                'ConnectionString [String] ByPropertyName',
                'Credential [PSCredential]',
                'Connection [ConnectionTarget] ByPropertyName',
                'LedgerSchema [String]'
            )
        }

        It 'has help: a synopsis, every parameter described, an example' {
            Assert-ZdtCommandHelp -Name Suspend-Backfill
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Low, and declares its output type' {
            $attribute = (Get-Command -Name Suspend-Backfill).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Low'
            (Get-Command -Name Suspend-Backfill).OutputType.Name | Should -Be 'ZeroDowntime.Engine.Migration'
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
            Remove-ZdtTestTable -Table $table
        }

        It "pauses: a backfill started while the pause is set fills nothing until Resume-Backfill" {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $paused = $migration | Suspend-Backfill -Confirm:$false
            $paused.BackfillControl.Paused | Should -BeTrue
            $stopped = Invoke-Backfill -ConnectionString $cs -Id $migration.Id -MaxDuration 00:00:01.5 -Confirm:$false -WarningAction SilentlyContinue
            "$($stopped.Phase)" | Should -Be "Backfilling"
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NULL;" | Should -Be "50"
            (Get-Migration -ConnectionString $cs -Id $migration.Id -IncludeEvents).Events.Action | Should -Contain "backfill paused"
            Resume-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false | Out-Null
            "$((Invoke-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false).Phase)" | Should -Be "Backfilled"
        }

        It "-WhatIf changes nothing" {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            Suspend-Backfill -ConnectionString $cs -Id $migration.Id -WhatIf
            (Get-Migration -ConnectionString $cs -Id $migration.Id).BackfillControl | Should -BeNullOrEmpty
        }
    }
}
