# Pester 5. Remove-Index as a user meets it: DROP INDEX CONCURRENTLY.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Remove-Index' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Remove-Index | Should -Be @(
                'Name [String] Mandatory Position=0 ByPropertyName',
                'Schema [String] ByPropertyName',
                'IfExists [SwitchParameter]',
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
            Assert-ZdtCommandHelp -Name Remove-Index
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact High' {
            $attribute = (Get-Command -Name Remove-Index).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'High'
        }

        It 'declares its output type' {
            (Get-Command -Name Remove-Index).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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


        It '-WhatIf prints DROP INDEX CONCURRENTLY and drops nothing' {
            Invoke-Psql "CREATE INDEX ${table}_qty_idx ON public.$table (qty);" | Out-Null
            $whatIf = Get-ZdtWhatIfText { Remove-Index -ConnectionString $cs -Name ${table}_qty_idx -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'DROP INDEX CONCURRENTLY'
            Invoke-Psql "SELECT count(*) FROM pg_class WHERE relname = '${table}_qty_idx';" | Should -Be '1'
        }

        It 'drops the index (-Name by position) and outputs the migration' {
            Invoke-Psql "CREATE INDEX ${table}_qty_idx ON public.$table (qty);" | Out-Null
            $migration = Remove-Index "${table}_qty_idx" -ConnectionString $cs -Confirm:$false
            $migration | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            Invoke-Psql "SELECT count(*) FROM pg_class WHERE relname = '${table}_qty_idx';" | Should -Be '0'
        }

        It 'run twice, the second run fails with IndexNotFound; with -IfExists (and no -Confirm in a non-interactive script) it runs nothing and says so' {
            Invoke-Psql "CREATE INDEX ${table}_qty_idx ON public.$table (qty);" | Out-Null
            Remove-Index "${table}_qty_idx" -ConnectionString $cs -Confirm:$false | Out-Null
            $record = { Remove-Index "${table}_qty_idx" -ConnectionString $cs -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.FullyQualifiedErrorId | Should -BeLike 'IndexNotFound,*'
            $run = Invoke-ZdtScriptFile -WithModule "`$ErrorActionPreference = 'Stop'; Remove-Index -ConnectionString `$cs -Name ${table}_qty_idx -IfExists"
            $run.ExitCode | Should -Be 0
            $run.Output | Should -Match 'nothing to remove \(-IfExists\)'
        }

        It 'binds -Name and -Schema by property name' {
            Invoke-Psql "CREATE INDEX ${table}_qty_idx ON public.$table (qty);" | Out-Null
            [pscustomobject]@{ Name = "${table}_qty_idx"; Schema = 'public'; ConnectionString = $cs } | Remove-Index -Confirm:$false | Out-Null
            Invoke-Psql "SELECT count(*) FROM pg_class WHERE relname = '${table}_qty_idx';" | Should -Be '0'
        }

        It 'a missing index is an ObjectNotFound error about it; with -ErrorAction Stop it throws' {
            $record = { Remove-Index -ConnectionString $cs -Name "nope_$table" -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId IndexNotFound -Category ObjectNotFound -Command Remove-Index -TargetObject """public"".""nope_$table"""
        }
    }

    Context 'on a partitioned table' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtPartitionedTestTable -Table $table
            Invoke-Psql "CREATE INDEX ${table}_qty ON public.$table (qty);" | Out-Null
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table
        }

        It '-WhatIf prints one short DROP INDEX under ACCESS EXCLUSIVE (no concurrent way exists) and drops nothing' {
            $whatIf = Get-ZdtWhatIfText { Remove-Index -ConnectionString $cs -Name "${table}_qty" -WhatIf }
            $whatIf | Should -Match "DROP INDEX IF EXISTS `"public`".`"${table}_qty`""
            $whatIf | Should -Match 'ACCESS EXCLUSIVE'
            Invoke-Psql "SELECT count(*) FROM pg_index i JOIN pg_partition_tree('public.$table') t ON t.relid = i.indrelid;" | Should -Be '6'
        }

        It 'drops the partitioned index with the index of every partition' {
            $migration = Remove-Index -ConnectionString $cs -Name "${table}_qty" -Confirm:$false
            "$($migration.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_index i JOIN pg_partition_tree('public.$table') t ON t.relid = i.indrelid;" | Should -Be '0'
        }

        It "a partition's index is an InvalidOperation error naming the parent index" {
            $record = { Remove-Index -ConnectionString $cs -Name "${table}_2020_qty_idx" -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId IndexInUse -Category InvalidOperation -Command Remove-Index -TargetObject """public"".""${table}_2020_qty_idx"""
            $record.Exception.Message | Should -Match "${table}_qty"
        }
    }
}
