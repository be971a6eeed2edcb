# Pester 5. Add-Column as a user meets it: adding a column without a table rewrite under lock.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Add-Column' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Add-Column | Should -Be @(
                'Table [String] Mandatory Position=0 ByPropertyName',
                'Column [String] Mandatory Position=1',
                'Type [String] Mandatory Position=2',
                'Default [String]',
                'NotNull [SwitchParameter]',
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
            Assert-ZdtCommandHelp -Name Add-Column
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name Add-Column).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name Add-Column).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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


        It '-WhatIf prints the ADD COLUMN and changes nothing' {
            $whatIf = Get-ZdtWhatIfText { Add-Column -ConnectionString $cs -Table $table -Column status -Type 'varchar(20)' -Default "'new'" -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'ADD COLUMN "status"'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
        }

        It 'adds the column with its default and outputs the migration' {
            $migration = Add-Column -ConnectionString $cs -Table $table -Column status -Type 'varchar(20)' -Default "'new'" -Confirm:$false
            $migration | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty,status'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE status = 'new';" | Should -Be '50'
        }

        It 'binds -Table and -Schema by property name' {
            $migration = [pscustomobject]@{ Table = $table; Schema = 'public'; ConnectionString = $cs } | Add-Column -Column note -Type text -Confirm:$false
            $migration.Table | Should -Be $table
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty,note'
        }

        It 'an existing column is refused with an error about it, and nothing changes' {
            $record = { Add-Column -ConnectionString $cs -Table $table -Column qty -Type int -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.FullyQualifiedErrorId | Should -BeLike 'ColumnExists,*'
            $record.InvocationInfo.MyCommand.Name | Should -Be 'Add-Column'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
        }

        It 'a missing table is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Add-Column -ConnectionString $cs -Table nope -Column c -Type int -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId TableNotFound -Category ObjectNotFound -Command Add-Column -TargetObject '"public"."nope"'
        }
    }

    Context 'on a partitioned table' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtPartitionedTestTable -Table $table
            Invoke-Psql "ALTER TABLE public.$table ADD PRIMARY KEY (id, created, region);" | Out-Null
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table
        }

        It 'a volatile default is backfilled partition by partition: Add-Column | Invoke-Backfill | Complete-Contract' {
            $run = Get-ZdtProgressRecords -Variables @{ cs = $cs; table = $table } -Script @'
Add-Column -ConnectionString $cs -Table $table -Column token -Type uuid -Default 'gen_random_uuid()' -NotNull -Confirm:$false |
    Invoke-Backfill -BatchSize 50 |
    Complete-Contract -Confirm:$false
'@
            $run.Errors | Should -BeNullOrEmpty
            $done = $run.Output[-1]
            "$($done.Phase)" | Should -Be 'Completed'
            "$($done.Strategy)" | Should -Be 'Backfill'
            # Each leaf partition is walked by itself, its progress naming it.
            @($run.Progress | Where-Object Activity -Like "Backfill ""public"".""${table}_2021_eu""*").Count | Should -BeGreaterThan 0
            Invoke-Psql "SELECT count(DISTINCT token) FROM public.$table;" | Should -Be '200'
            Invoke-Psql "SELECT bool_and(attnotnull) FROM pg_attribute a JOIN pg_partition_tree('public.$table') t ON t.relid = a.attrelid WHERE a.attname = 'token';" | Should -Be 't'
            Get-ColumnList -Table $table | Should -Be 'id,created,region,qty,token'
        }
    }
}
