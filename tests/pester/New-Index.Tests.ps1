# Pester 5. New-Index as a user meets it: CREATE INDEX CONCURRENTLY that leaves no INVALID index behind.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'New-Index' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name New-Index | Should -Be @(
                'Table [String] Mandatory Position=0 ByPropertyName',
                'Column [String[]] Position=1 ByPropertyName',
                'Expression [String[]]',
                'Include [String[]]',
                'Where [String]',
                'Method [String]',
                'Unique [SwitchParameter]',
                'Name [String]',
                'Schema [String] ByPropertyName',
                'IfNotExists [SwitchParameter]',
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
            Assert-ZdtCommandHelp -Name New-Index
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name New-Index).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name New-Index).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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


        It '-WhatIf prints CREATE INDEX CONCURRENTLY and builds nothing' {
            $whatIf = Get-ZdtWhatIfText { New-Index -ConnectionString $cs -Table $table -Column qty -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'CREATE INDEX CONCURRENTLY'
            Invoke-Psql "SELECT count(*) FROM pg_index WHERE indrelid = 'public.$table'::regclass;" | Should -Be '1'
        }

        It 'builds a valid index (by position: -Table, -Column) and outputs the migration Completed' {
            $migration = New-Index $table qty -ConnectionString $cs -Confirm:$false
            $migration | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_index WHERE indrelid = 'public.$table'::regclass AND indisvalid;" | Should -Be '2'
        }

        It 'run twice, the second run fails with NameTaken; with -IfNotExists it runs nothing, says so and outputs the first run''s migration' {
            $first = New-Index -ConnectionString $cs -Table $table -Column qty -Confirm:$false
            $record = { New-Index -ConnectionString $cs -Table $table -Column qty -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.FullyQualifiedErrorId | Should -BeLike 'NameTaken,*'
            $again = New-Index -ConnectionString $cs -Table $table -Column qty -IfNotExists -InformationVariable log -ErrorVariable problems
            $problems | Should -BeNullOrEmpty
            $again.Id | Should -Be $first.Id
            ($log -join "`n") | Should -Match 'already exists.*CREATE INDEX.*-IfNotExists'
            Invoke-Psql "SELECT count(*) FROM pg_index WHERE indrelid = 'public.$table'::regclass;" | Should -Be '2'
            @(Get-Migration -ConnectionString $cs -Table $table -Operation CreateIndex).Count | Should -Be 1 -Because 'neither the refusal at planning nor the -IfNotExists run records anything'
        }

        It 'binds -Table, -Column and -Schema by property name' {
            [pscustomobject]@{ Table = $table; Column = 'customer'; Schema = 'public'; ConnectionString = $cs } | New-Index -Confirm:$false | Out-Null
            Invoke-Psql "SELECT count(*) FROM pg_index WHERE indrelid = 'public.$table'::regclass;" | Should -Be '2'
        }

        It '-Unique over duplicates fails with an error and leaves no INVALID index' {
            Invoke-Psql "UPDATE public.$table SET qty = 1;" | Out-Null
            $record = { New-Index -ConnectionString $cs -Table $table -Column qty -Unique -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.InvocationInfo.MyCommand.Name | Should -Be 'New-Index'
            Invoke-Psql "SELECT count(*) FROM pg_index WHERE indrelid = 'public.$table'::regclass AND NOT indisvalid;" | Should -Be '0'
        }

        It 'a missing table is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { New-Index -ConnectionString $cs -Table nope -Column a -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId TableNotFound -Category ObjectNotFound -Command New-Index -TargetObject '"public"."nope"'
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

        It '-WhatIf prints ON ONLY, each partition CONCURRENTLY and ATTACH PARTITION, and builds nothing' {
            $whatIf = Get-ZdtWhatIfText { New-Index -ConnectionString $cs -Table $table -Column qty -WhatIf }
            $whatIf | Should -Match "ON ONLY `"public`".`"$table`""
            $whatIf | Should -Match "CREATE INDEX CONCURRENTLY `"${table}_2021_eu_qty_idx`""
            $whatIf | Should -Match 'ATTACH PARTITION'
            Invoke-Psql "SELECT count(*) FROM pg_index i JOIN pg_partition_tree('public.$table') t ON t.relid = i.indrelid;" | Should -Be '0'
        }

        It 'builds the parent index valid with one attached index in every partition of both levels' {
            $migration = New-Index -ConnectionString $cs -Table $table -Column qty -Name "${table}_qty" -Confirm:$false
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.${table}_qty'::regclass;" | Should -Be 't'
            Invoke-Psql "SELECT count(*) FROM pg_index i JOIN pg_partition_tree('public.$table') t ON t.relid = i.indrelid WHERE i.indisvalid;" | Should -Be '6'
        }

        It 'a unique index that lacks a partition key column is an InvalidArgument error before anything changes' {
            $record = { New-Index -ConnectionString $cs -Table $table -Column id -Unique -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId UniqueIndexNeedsPartitionKey -Category InvalidArgument -Command New-Index -TargetObject """public"".""$table"""
            Invoke-Psql "SELECT count(*) FROM pg_index i JOIN pg_partition_tree('public.$table') t ON t.relid = i.indrelid;" | Should -Be '0'
        }
    }
}
