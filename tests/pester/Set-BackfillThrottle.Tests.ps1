# Pester 5. Set-BackfillThrottle: operator control of a migration's backfill from another session, kept on the
# migration's ledger row and read by the running Invoke-Backfill between batches.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Set-BackfillThrottle' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Set-BackfillThrottle | Should -Be @(
                'Delay [TimeSpan]',
                'BatchSize [Int32]',
                'TargetBatchTime [TimeSpan]',
                'MaxLoad [Int32]',
                'Reset [SwitchParameter]',
                'Id [Int64] Mandatory Position=0 ByPropertyName',
                'ConnectionString [String] ByPropertyName',
                'Credential [PSCredential]',
                'Connection [ConnectionTarget] ByPropertyName',
                'LedgerSchema [String]'
            )
        }

        It 'has help: a synopsis, every parameter described, an example' {
            Assert-ZdtCommandHelp -Name Set-BackfillThrottle
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Low, and declares its output type' {
            $attribute = (Get-Command -Name Set-BackfillThrottle).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Low'
            (Get-Command -Name Set-BackfillThrottle).OutputType.Name | Should -Be 'ZeroDowntime.Engine.Migration'
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

        It "records the retuning it is given, leaves the rest, and -Reset drops it" {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $tuned = Set-BackfillThrottle -ConnectionString $cs -Id $migration.Id -BatchSize 20 -Delay 00:00:00.1 -Confirm:$false
            $tuned.BackfillControl.BatchSize | Should -Be 20
            $tuned.BackfillControl.DelayMilliseconds | Should -Be 100
            $tuned = Set-BackfillThrottle -ConnectionString $cs -Id $migration.Id -MaxLoad 5 -TargetBatchTime 00:00:00.2 -Confirm:$false
            $tuned.BackfillControl.BatchSize | Should -Be 20
            $tuned.BackfillControl.MaxLoad | Should -Be 5
            $tuned.BackfillControl.TargetBatchTimeMilliseconds | Should -Be 200
            $reset = Set-BackfillThrottle -ConnectionString $cs -Id $migration.Id -Reset -Confirm:$false
            $reset.BackfillControl.BatchSize | Should -BeNullOrEmpty
            $reset.BackfillControl.MaxLoad | Should -BeNullOrEmpty
        }

        It "-BatchSize rejects zero before anything runs" {
            { Set-BackfillThrottle -ConnectionString $cs -Id 1 -BatchSize 0 -Confirm:$false } | Should -Throw -ErrorId "ParameterArgumentValidationError*"
        }
    }
}
