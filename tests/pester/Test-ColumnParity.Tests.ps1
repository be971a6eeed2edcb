# Pester 5. Test-ColumnParity as a user meets it: the read-only parity proof of a column rename.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Test-ColumnParity' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Test-ColumnParity | Should -Be @(
                'Id [Int64] Mandatory Position=0 ByPropertyName',
                'ConnectionString [String] ByPropertyName',
                'Credential [PSCredential]',
                'Connection [ConnectionTarget] ByPropertyName',
                'LedgerSchema [String]'
            )
        }

        It 'has help: a synopsis, every parameter described, an example' {
            Assert-ZdtCommandHelp -Name Test-ColumnParity
        }

        It 'changes nothing, so it has no -WhatIf or -Confirm' {
            (Get-Command -Name Test-ColumnParity).Parameters.Keys | Should -Not -Contain 'WhatIf'
            (Get-Command -Name Test-ColumnParity).Parameters.Keys | Should -Not -Contain 'Confirm'
        }

        It 'declares its output type' {
            (Get-Command -Name Test-ColumnParity).OutputType.Name | Should -Be 'ZeroDowntime.Engine.ParityResult'
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


        It 'outputs a ParityResult (InParity, Mismatches) shown as a table, and moves the migration to Verified' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false | Invoke-Backfill -Confirm:$false
            $parity = $migration | Test-ColumnParity
            $parity | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.ParityResult'
            $parity.InParity | Should -BeTrue
            $parity.Id | Should -Be $migration.Id
            ($parity | Get-ZdtTableText) | Should -Match 'InParity'
            "$((Get-Migration -ConnectionString $cs -Id $migration.Id).Phase)" | Should -Be 'Verified'
        }

        It 'rows that differ are a NotInParity error (parity was asked for), and the result still goes out with the mismatches' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $parity = Test-ColumnParity -ConnectionString $cs -Id $migration.Id -ErrorVariable failures -ErrorAction SilentlyContinue
            $parity.InParity | Should -BeFalse
            $parity.Mismatches | Should -Be 50
            @($failures).Count | Should -Be 1
            Assert-ZdtErrorRecord -ErrorRecord $failures[0] -ErrorId NotInParity -Category InvalidData -Command Test-ColumnParity -TargetObject "$($migration.Id)" -MessageLike '*not in parity: 50 of 50 rows*'
            $failures[0].ErrorDetails.RecommendedAction | Should -Match 'Invoke-Backfill'
        }

        It 'rows that differ throw under -ErrorAction Stop, so a script stops before the contract' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            { Test-ColumnParity -ConnectionString $cs -Id $migration.Id -ErrorAction Stop } | Should -Throw -ErrorId 'NotInParity,*'
        }

        It 'passes its result on to Complete-Contract (the README pipeline), which completes the rename' {
            $done = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false |
                Invoke-Backfill -Confirm:$false | Test-ColumnParity | Complete-Contract -Confirm:$false
            "$($done.Phase)" | Should -Be 'Completed'
            Get-ColumnList -Table $table | Should -Be 'id,qty,client'
        }

        It 'an unknown migration is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Test-ColumnParity -ConnectionString $cs -Id 987654321 -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId MigrationNotFound -Category ObjectNotFound -Command Test-ColumnParity -TargetObject '987654321'
        }
    }
}
