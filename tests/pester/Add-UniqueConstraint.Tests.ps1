# Pester 5. Add-UniqueConstraint as a user meets it: UNIQUE constraints through an index built concurrently.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Add-UniqueConstraint' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Add-UniqueConstraint | Should -Be @(
                'Table [String] Mandatory Position=0 ByPropertyName',
                'Column [String[]] Mandatory Position=1 ByPropertyName',
                'Name [String]',
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
            Assert-ZdtCommandHelp -Name Add-UniqueConstraint
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name Add-UniqueConstraint).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name Add-UniqueConstraint).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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


        It '-WhatIf prints the plan and adds nothing' {
            $whatIf = Get-ZdtWhatIfText { Add-UniqueConstraint -ConnectionString $cs -Table $table -Column customer -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'CREATE UNIQUE INDEX CONCURRENTLY'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'u';" | Should -Be '0'
        }

        It 'adds a validated constraint and outputs the migration Completed' {
            $migration = Add-UniqueConstraint -ConnectionString $cs -Table $table -Column customer -Confirm:$false
            $migration | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'u';" | Should -Be '1'
        }

        It 'a missing table is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Add-UniqueConstraint -ConnectionString $cs -Table nope -Column a -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId TableNotFound -Category ObjectNotFound -Command Add-UniqueConstraint -TargetObject '"public"."nope"'
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

        It 'builds each partition''s index concurrently, constrains it, and the parent adopts them all' {
            $whatIf = Get-ZdtWhatIfText { Add-UniqueConstraint -ConnectionString $cs -Table $table -Column id, created, region -WhatIf }
            $whatIf | Should -Match "CREATE UNIQUE INDEX CONCURRENTLY `"${table}_2021_eu_id_created_region_key`""
            $migration = Add-UniqueConstraint -ConnectionString $cs -Table $table -Column id, created, region -Confirm:$false
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('public.$table') t ON t.relid = c.conrelid WHERE c.contype = 'u' AND (c.conparentid <> 0) = (c.conrelid <> 'public.$table'::regclass);" | Should -Be '6'
        }

        It 'a key without the partition key columns is an InvalidArgument error before anything changes' {
            $record = { Add-UniqueConstraint -ConnectionString $cs -Table $table -Column id -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId UniqueIndexNeedsPartitionKey -Category InvalidArgument -Command Add-UniqueConstraint -TargetObject """public"".""$table"""
            Invoke-Psql "SELECT count(*) FROM pg_index i JOIN pg_partition_tree('public.$table') t ON t.relid = i.indrelid;" | Should -Be '0'
        }
    }
}
