# Pester 5. Add-PrimaryKey as a user meets it: a PRIMARY KEY through a unique index built concurrently.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Add-PrimaryKey' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Add-PrimaryKey | Should -Be @(
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
            Assert-ZdtCommandHelp -Name Add-PrimaryKey
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name Add-PrimaryKey).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name Add-PrimaryKey).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
        }
    }

    Context 'against a database' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtTestTable -Table $table
            Invoke-Psql "CREATE TABLE public.${table}_parent (code text NOT NULL, note text); INSERT INTO public.${table}_parent VALUES ('a', 'x'), ('b', 'y');" | Out-Null
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table -AlsoDrop "${table}_new", "${table}_parent"
        }


        It '-WhatIf prints the plan and adds nothing' {
            $whatIf = Get-ZdtWhatIfText { Add-PrimaryKey -ConnectionString $cs -Table ${table}_parent -Column code -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'CREATE UNIQUE INDEX CONCURRENTLY'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.${table}_parent'::regclass AND contype = 'p';" | Should -Be '0'
        }

        It 'adds the primary key and outputs the migration Completed' {
            $migration = Add-PrimaryKey -ConnectionString $cs -Table "${table}_parent" -Column code -Confirm:$false
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.${table}_parent'::regclass AND contype = 'p';" | Should -Be '1'
        }

        It 'refuses a nullable column, saying so, and adds nothing' {
            $record = { Add-PrimaryKey -ConnectionString $cs -Table "${table}_parent" -Column note -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.InvocationInfo.MyCommand.Name | Should -Be 'Add-PrimaryKey'
            $record.Exception.Message | Should -Match 'NOT NULL|null'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.${table}_parent'::regclass AND contype = 'p';" | Should -Be '0'
        }

        It 'a missing table is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Add-PrimaryKey -ConnectionString $cs -Table nope -Column a -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId TableNotFound -Category ObjectNotFound -Command Add-PrimaryKey -TargetObject '"public"."nope"'
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

        It 'adds the primary key partition by partition and on the parent' {
            $migration = Add-PrimaryKey -ConnectionString $cs -Table $table -Column id, created, region -Confirm:$false
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('public.$table') t ON t.relid = c.conrelid WHERE c.contype = 'p';" | Should -Be '6'
            Invoke-Psql "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.${table}_pkey'::regclass;" | Should -Be 't'
        }
    }
}
