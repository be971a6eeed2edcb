# Pester 5. Set-ColumnNotNull as a user meets it: making a column NOT NULL without a locked full scan.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Set-ColumnNotNull' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Set-ColumnNotNull | Should -Be @(
                'Table [String] Mandatory Position=0 ByPropertyName',
                'Column [String] Mandatory Position=1 ByPropertyName',
                'Schema [String] ByPropertyName',
                'Tag [String]',
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
            Assert-ZdtCommandHelp -Name Set-ColumnNotNull
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name Set-ColumnNotNull).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name Set-ColumnNotNull).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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


        It '-WhatIf prints the CHECK it would add and changes nothing' {
            $whatIf = Get-ZdtWhatIfText { Set-ColumnNotNull -ConnectionString $cs -Table $table -Column customer -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'NOT VALID'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'c';" | Should -Be '0'
        }

        It 'pipes into Complete-Contract (README) and the column ends NOT NULL' {
            $done = Set-ColumnNotNull -ConnectionString $cs -Table $table -Column customer -Confirm:$false | Complete-Contract -Confirm:$false
            "$($done.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.$table'::regclass AND attname = 'customer';" | Should -Be 't'
        }

        It 'binds -Table and -Column by property name' {
            $migration = [pscustomobject]@{ Table = $table; Column = 'customer'; ConnectionString = $cs } | Set-ColumnNotNull -Confirm:$false
            $migration.Column | Should -Be 'customer'
        }

        It 'refuses while NULLs exist, saying how many, and changes nothing' {
            Invoke-Psql "UPDATE public.$table SET customer = NULL WHERE id <= 3;" | Out-Null
            $record = { Set-ColumnNotNull -ConnectionString $cs -Table $table -Column customer -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.InvocationInfo.MyCommand.Name | Should -Be 'Set-ColumnNotNull'
            $record.Exception.Message | Should -Match '\b3\b'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'c';" | Should -Be '0'
        }

        It 'a missing column is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Set-ColumnNotNull -ConnectionString $cs -Table $table -Column nope -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId ColumnNotFound -Category ObjectNotFound -Command Set-ColumnNotNull
        }
    }

    Context 'on a partitioned table' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtPartitionedTestTable -Table $table
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table
        }

        It 'validates the check partition by partition, then the parent, and the column ends NOT NULL in every partition' {
            $whatIf = Get-ZdtWhatIfText { Set-ColumnNotNull -ConnectionString $cs -Table $table -Column qty -WhatIf }
            $whatIf | Should -Match "ALTER TABLE `"public`".`"${table}_2021_eu`" VALIDATE CONSTRAINT"
            Set-ColumnNotNull -ConnectionString $cs -Table $table -Column qty -Confirm:$false | Complete-Contract -Confirm:$false | Out-Null
            Invoke-Psql "SELECT count(*) FROM pg_attribute a JOIN pg_partition_tree('public.$table') t ON t.relid = a.attrelid WHERE a.attname = 'qty' AND a.attnotnull;" | Should -Be '6'
            Invoke-Psql "SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('public.$table') t ON t.relid = c.conrelid;" | Should -Be '0'
        }
    }
}
