# Pester 5. Get-Migration as a user meets it: reading the ledger.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Get-Migration' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Get-Migration | Should -Be @(
                'Id [Int64] Position=0 ByPropertyName',
                'Table [String]',
                'Schema [String]',
                'Tag [String]',
                'Column [String]',
                'Operation [String[]]',
                'Phase [String[]]',
                'Active [SwitchParameter]',
                'IncludeEvents [SwitchParameter]',
                'ConnectionString [String] ByPropertyName',
                'Credential [PSCredential]',
                'Connection [ConnectionTarget] ByPropertyName',
                'LedgerSchema [String]'
            )
        }

        It 'has help: a synopsis, every parameter described, an example' {
            Assert-ZdtCommandHelp -Name Get-Migration
        }

        It 'changes nothing, so it has no -WhatIf or -Confirm' {
            (Get-Command -Name Get-Migration).Parameters.Keys | Should -Not -Contain 'WhatIf'
            (Get-Command -Name Get-Migration).Parameters.Keys | Should -Not -Contain 'Confirm'
        }

        It '-Operation and -Phase take the ledger''s names, and only those' {
            Get-ZdtValidateSet -Name Get-Migration -Parameter Operation | Should -Be @('RenameTable', 'RenameColumn', 'RenameColumnView', 'ChangeColumnType', 'AddColumn', 'SetColumnNotNull', 'CreateIndex', 'DropIndex', 'AddConstraint', 'SafeDdl')
            Get-ZdtValidateSet -Name Get-Migration -Parameter Phase | Should -Be @('Expanding', 'Expanded', 'Backfilling', 'Backfilled', 'Verified', 'Contracting', 'Completed', 'Undoing', 'Undone', 'Failed')
        }

        It 'its help INPUTS name what binds from the pipeline (by property name), not a string' {
            $inputs = @((Get-Help -Name Get-Migration -Full).inputTypes.inputType.type.name)
            $inputs | Should -Be @('ZeroDowntime.Engine.Migration', 'System.Management.Automation.PSObject')
            $bindable = (Get-Command -Name Get-Migration).ParameterSets.Parameters | Where-Object { $_.ValueFromPipeline }
            $bindable | Should -BeNullOrEmpty -Because 'nothing binds by value, so no INPUTS entry may name a bare type'
        }

        It 'declares its output type' {
            (Get-Command -Name Get-Migration).OutputType.Name | Should -Be 'ZeroDowntime.Engine.Migration'
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


        It 'finds nothing, without an error, for a table that never had a migration' {
            Get-Migration -ConnectionString $cs -Table $table -ErrorVariable problems | Should -BeNullOrEmpty
            $problems | Should -BeNullOrEmpty
        }

        It '-Active lists only migrations that are not finished, as a table' {
            $first = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            $first | Undo-Migration -Confirm:$false | Out-Null
            $second = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            @(Get-Migration -ConnectionString $cs -Table $table).Id | Should -Be @($first.Id, $second.Id)
            $active = @(Get-Migration -ConnectionString $cs -Table $table -Active)
            $active.Id | Should -Be @($second.Id)
            ($active | Get-ZdtTableText) | Should -Match "\b$($second.Id)\s+$table\s+customer\s+client\s+Expanded\s+RenameColumn"
        }

        It '-Tag finds the migrations a stage started with that tag; -Column, -Operation and -Phase narrow by those' {
            $tag = "release-$table"
            $rename = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Tag $tag -Confirm:$false
            $index = New-Index -ConnectionString $cs -Table $table -Column qty -Tag $tag -Confirm:$false
            $rename.Tag | Should -Be $tag
            ($rename | Format-List | Out-String) | Should -Match "Tag\s+: $tag"
            (Get-Migration -ConnectionString $cs -Tag $tag).Id | Should -Be @($rename.Id, $index.Id)
            (Get-Migration -ConnectionString $cs -Tag $tag -Active).Id | Should -Be @($rename.Id)
            (Get-Migration -ConnectionString $cs -Tag $tag -Operation createindex).Id | Should -Be @($index.Id)
            (Get-Migration -ConnectionString $cs -Tag $tag -Phase Completed, Undone).Id | Should -Be @($index.Id)
            (Get-Migration -ConnectionString $cs -Table $table -Column client).Id | Should -Be @($rename.Id)
            Get-Migration -ConnectionString $cs -Tag "$tag-other" -ErrorVariable problems | Should -BeNullOrEmpty
            $problems | Should -BeNullOrEmpty
            (Get-Migration -ConnectionString $cs -Id $rename.Id).Database | Should -Be $rename.Connection.Database
        }

        It 'a -Tag that is blank is refused by the parameter binder' {
            { New-Index -ConnectionString $cs -Table $table -Column qty -Tag '' -Confirm:$false } | Should -Throw -ErrorId 'ParameterArgumentValidationError,ZeroDowntime.PowerShell.Commands.NewIndexCommand'
        }

        It '-IncludeEvents carries every phase change with the SQL that ran' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            $events = @((Get-Migration -ConnectionString $cs -Id $migration.Id -IncludeEvents).Events)
            $events.Count | Should -BeGreaterThan 0
            $events.ToPhase | Should -Contain 'expanded'
            ($events.Sql -join "`n") | Should -Match 'RENAME TO'
        }

        It 'binds -Id by position and by property name' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            (Get-Migration $migration.Id -ConnectionString $cs).Table | Should -Be $table
            ([pscustomobject]@{ Id = $migration.Id; ConnectionString = $cs } | Get-Migration).Table | Should -Be $table
        }

        It 'an unknown id is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Get-Migration -ConnectionString $cs -Id 987654321 -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId MigrationNotFound -Category ObjectNotFound -Command Get-Migration -TargetObject '987654321'
        }

        It 'an unreachable server is a connection error that never shows the password' {
            $record = { Get-Migration -ConnectionString 'Host=127.0.0.1;Port=1;Username=zdt;Password=sekrit-pw;Timeout=2' -ErrorAction Stop } | Should -Throw -PassThru
            $record.FullyQualifiedErrorId | Should -BeLike 'ConnectionFailed,*'
            ($record | Out-String) + $record.Exception.ToString() | Should -Not -Match 'sekrit-pw'
        }
    }
}
