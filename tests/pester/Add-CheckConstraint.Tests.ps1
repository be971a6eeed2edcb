# Pester 5. Add-CheckConstraint as a user meets it: CHECK constraints added NOT VALID, then validated.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Add-CheckConstraint' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Add-CheckConstraint | Should -Be @(
                'Table [String] Mandatory Position=0 ByPropertyName',
                'Expression [String] Mandatory Position=1',
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
            Assert-ZdtCommandHelp -Name Add-CheckConstraint
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name Add-CheckConstraint).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name Add-CheckConstraint).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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
            $whatIf = Get-ZdtWhatIfText { Add-CheckConstraint -ConnectionString $cs -Table $table -Expression 'qty > 0' -Name ${table}_qty_positive -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'NOT VALID'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'c' AND convalidated;" | Should -Be '0'
        }

        It 'adds a validated constraint and outputs the migration Completed' {
            $migration = Add-CheckConstraint -ConnectionString $cs -Table $table -Expression 'qty > 0' -Name ${table}_qty_positive -Confirm:$false
            $migration | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'c' AND convalidated;" | Should -Be '1'
        }

        It 'a missing table is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Add-CheckConstraint -ConnectionString $cs -Table nope -Expression 'a > 0' -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId TableNotFound -Category ObjectNotFound -Command Add-CheckConstraint -TargetObject '"public"."nope"'
        }

        It 'refuses rows that break the check, and leaves no constraint behind' {
            Invoke-Psql "UPDATE public.$table SET qty = -1 WHERE id = 1;" | Out-Null
            $record = { Add-CheckConstraint -ConnectionString $cs -Table $table -Expression 'qty > 0' -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.InvocationInfo.MyCommand.Name | Should -Be 'Add-CheckConstraint'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'c';" | Should -Be '0'
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

        It 'validates the check partition by partition, then on each level: every relation of the tree has it, validated' {
            $whatIf = Get-ZdtWhatIfText { Add-CheckConstraint -ConnectionString $cs -Table $table -Expression 'qty > 0' -Name "${table}_qty_positive" -WhatIf }
            $whatIf | Should -Match "ALTER TABLE `"public`".`"${table}_2021_eu`" ADD CONSTRAINT `"${table}_qty_positive`" CHECK \(qty > 0\) NOT VALID"
            $migration = Add-CheckConstraint -ConnectionString $cs -Table $table -Expression 'qty > 0' -Name "${table}_qty_positive" -Confirm:$false
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('public.$table') t ON t.relid = c.conrelid WHERE c.contype = 'c' AND c.convalidated;" | Should -Be '6'
        }

        It 'refuses a row that breaks the check in one partition, and leaves the check on no level' {
            Invoke-Psql "UPDATE public.$table SET qty = -1 WHERE id = 2;" | Out-Null
            $record = { Add-CheckConstraint -ConnectionString $cs -Table $table -Expression 'qty > 0' -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId ConstraintViolated -Category InvalidData -Command Add-CheckConstraint -TargetObject 1
            Invoke-Psql "SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('public.$table') t ON t.relid = c.conrelid WHERE c.contype = 'c';" | Should -Be '0'
        }
    }
}
