# Pester 5. Resume-Backfill: operator control of a migration's backfill from another session, kept on the
# migration's ledger row and read by the running Invoke-Backfill between batches.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Resume-Backfill' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Resume-Backfill | Should -Be @(
                'Id [Int64] Mandatory Position=0 ByPropertyName',
                'ConnectionString [String] ByPropertyName',
                'Credential [PSCredential]',
                'Connection [ConnectionTarget] ByPropertyName',
                'LedgerSchema [String]'
            )
        }

        It 'has help: a synopsis, every parameter described, an example' {
            Assert-ZdtCommandHelp -Name Resume-Backfill
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Low, and declares its output type' {
            $attribute = (Get-Command -Name Resume-Backfill).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Low'
            (Get-Command -Name Resume-Backfill).OutputType.Name | Should -Be 'ZeroDowntime.Engine.Migration'
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

        It "clears the pause" {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            Suspend-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false | Out-Null
            $resumed = Resume-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false
            $resumed.BackfillControl.Paused | Should -BeFalse
            "$((Invoke-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false).Phase)" | Should -Be "Backfilled"
        }

        It "refuses a completed migration with PhaseOutOfOrder" {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            Undo-Migration -ConnectionString $cs -Id $migration.Id -Confirm:$false | Out-Null
            { Resume-Backfill -ConnectionString $cs -Id $migration.Id -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId "PhaseOutOfOrder*"
        }
    }
}
