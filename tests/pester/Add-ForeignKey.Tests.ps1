# Pester 5. Add-ForeignKey as a user meets it: foreign keys added NOT VALID, then validated.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Add-ForeignKey' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Add-ForeignKey | Should -Be @(
                'Table [String] Mandatory Position=0 ByPropertyName',
                'Column [String[]] Mandatory Position=1 ByPropertyName',
                'ReferencedTable [String] Mandatory Position=2',
                'ReferencedColumn [String[]]',
                'ReferencedSchema [String]',
                'OnDelete [String]',
                'OnUpdate [String]',
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
            Assert-ZdtCommandHelp -Name Add-ForeignKey
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name Add-ForeignKey).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name Add-ForeignKey).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
        }
    }

    Context 'against a database' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtTestTable -Table $table
            Invoke-Psql "CREATE TABLE public.${table}_parent (id int PRIMARY KEY); INSERT INTO public.${table}_parent SELECT g FROM generate_series(1, 100) g;" | Out-Null
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table -AlsoDrop "${table}_new", "${table}_parent"
        }


        It '-WhatIf prints the plan and adds nothing' {
            $whatIf = Get-ZdtWhatIfText { Add-ForeignKey -ConnectionString $cs -Table $table -Column qty -ReferencedTable ${table}_parent -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'NOT VALID'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'f';" | Should -Be '0'
        }

        It 'adds a validated foreign key with -OnDelete and outputs the migration Completed' {
            $migration = Add-ForeignKey -ConnectionString $cs -Table $table -Column qty -ReferencedTable "${table}_parent" -OnDelete Cascade -Confirm:$false
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT confdeltype::text || convalidated::text FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'f';" | Should -Be 'ctrue'
        }

        It '-OnDelete accepts only the actions PostgreSQL has, and lists them' {
            $record = { Add-ForeignKey -ConnectionString $cs -Table $table -Column qty -ReferencedTable "${table}_parent" -OnDelete Explode } | Should -Throw -PassThru
            $record.FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentValidationError*'
            $record.Exception.Message | Should -BeLike '*NoAction*Restrict*Cascade*SetNull*SetDefault*'
        }

        It 'refuses orphan rows, and leaves no constraint behind' {
            Invoke-Psql "UPDATE public.$table SET qty = 1000 WHERE id = 1;" | Out-Null
            $record = { Add-ForeignKey -ConnectionString $cs -Table $table -Column qty -ReferencedTable "${table}_parent" -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.InvocationInfo.MyCommand.Name | Should -Be 'Add-ForeignKey'
            Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'f';" | Should -Be '0'
        }

        It 'a missing table is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Add-ForeignKey -ConnectionString $cs -Table nope -Column a -ReferencedTable "${table}_parent" -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId TableNotFound -Category ObjectNotFound -Command Add-ForeignKey -TargetObject '"public"."nope"'
        }
    }

    Context 'on a partitioned table' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtPartitionedTestTable -Table $table
            Invoke-Psql "CREATE TABLE public.${table}_parent (id int PRIMARY KEY); INSERT INTO public.${table}_parent SELECT g FROM generate_series(1, 200) g;" | Out-Null
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table -AlsoDrop "${table}_parent"
        }

        It 'adds the key NOT VALID and validates it per partition, then on the parent, which attaches them' {
            $whatIf = Get-ZdtWhatIfText { Add-ForeignKey -ConnectionString $cs -Table $table -Column qty -ReferencedTable "${table}_parent" -WhatIf }
            $whatIf | Should -Match "ALTER TABLE `"public`".`"${table}_default`" VALIDATE CONSTRAINT"
            $whatIf | Should -Not -Match "ALTER TABLE `"public`".`"$table`" ADD CONSTRAINT .* NOT VALID"
            $migration = Add-ForeignKey -ConnectionString $cs -Table $table -Column qty -ReferencedTable "${table}_parent" -Confirm:$false
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('public.$table') t ON t.relid = c.conrelid WHERE c.contype = 'f' AND c.convalidated;" | Should -Be '6'
            { Invoke-Psql "INSERT INTO public.$table VALUES (1, '2021-02-01', 'eu', 999);" 2>$null } | Should -Throw
        }

        It 'refuses orphans in one partition, and leaves the key on no partition' {
            Invoke-Psql "UPDATE public.$table SET qty = 1000 WHERE id IN (3, 4);" | Out-Null
            $record = { Add-ForeignKey -ConnectionString $cs -Table $table -Column qty -ReferencedTable "${table}_parent" -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId ConstraintViolated -Category InvalidData -Command Add-ForeignKey -TargetObject 2
            Invoke-Psql "SELECT count(*) FROM pg_constraint c JOIN pg_partition_tree('public.$table') t ON t.relid = c.conrelid WHERE c.contype = 'f';" | Should -Be '0'
        }
    }
}
