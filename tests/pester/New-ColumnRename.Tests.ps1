# Pester 5. New-ColumnRename as a user meets it: the expand phase of a column rename, by copy or by view.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'New-ColumnRename' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name New-ColumnRename | Should -Be @(
                'Table [String] Mandatory Position=0',
                'Column [String] Mandatory Position=1',
                'NewName [String] Mandatory Position=2',
                'Schema [String]',
                'Strategy [String]',
                'VersionSchema [String]',
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
            Assert-ZdtCommandHelp -Name New-ColumnRename
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name New-ColumnRename).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name New-ColumnRename).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
        }
    }

    Context 'run again (idempotent stages)' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtTestTable -Table $table
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table
        }

        It 'the same request run again returns the migration it started; a different one on the table still fails with MigrationAlreadyActive' {
            $first = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Tag "rel-$table" -Confirm:$false
            $run = Invoke-ZdtScriptFile -WithModule "`$ErrorActionPreference = 'Stop'; (New-ColumnRename -ConnectionString `$cs -Table $table -Column customer -NewName client -Tag rel-$table).Id"
            $run.ExitCode | Should -Be 0
            $run.Output | Should -Match "started by this same request \(tag 'rel-$table'\)"
            $run.Output | Should -Match "(?m)^$($first.Id)\s*$"
            @(Get-Migration -ConnectionString $cs -Table $table).Count | Should -Be 1
            $record = { New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName buyer -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $record.FullyQualifiedErrorId | Should -BeLike 'MigrationAlreadyActive,*'
            $record.Exception.Message | Should -Match "migration $($first.Id) \(RenameColumn"
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


        It '-WhatIf prints the plan with the exact SQL and changes nothing' {
            $whatIf = Get-ZdtWhatIfText { New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match ([regex]::Escape('ADD COLUMN "client" text'))
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
            Get-Migration -ConnectionString $cs -Table $table | Should -BeNullOrEmpty
        }

        It 'outputs a Migration in phase Expanded with the new column added' {
            $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
            $migration | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            "$($migration.Phase)" | Should -Be 'Expanded'
            $migration.Column | Should -Be 'customer'
            $migration.NewName | Should -Be 'client'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty,client'
            ($migration | Get-ZdtTableText) | Should -Match "\b$($migration.Id)\s+$table\s+customer\s+client\s+Expanded\s+RenameColumn"
        }

        It '-Strategy accepts only Copy or View, and says so' {
            $record = { New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Strategy Move } | Should -Throw -PassThru
            $record.FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentValidationError*'
            $record.Exception.Message | Should -BeLike '*Copy*View*'
        }

        It 'a missing column is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { New-ColumnRename -ConnectionString $cs -Table $table -Column nope -NewName x -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId ColumnNotFound -Category ObjectNotFound -Command New-ColumnRename
        }

        It 'a column a copy cannot carry (the primary key) is refused, naming why, and nothing changes' {
            $record = { New-ColumnRename -ConnectionString $cs -Table $table -Column id -NewName order_id -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId ColumnCannotBeCopied -Category InvalidOperation -Command New-ColumnRename -MessageLike '*primary key*'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
        }

        It 'runs the README pipeline New-ColumnRename | Invoke-Backfill | Test-ColumnParity | Complete-Contract with only PG* variables' {
            $uri = [uri](ConvertTo-ZdtPsqlUri $cs)
            $saved = @{}
            foreach ($name in 'PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD') { $saved[$name] = [Environment]::GetEnvironmentVariable($name) }
            try {
                $userInfo = $uri.UserInfo.Split(':', 2)
                $env:PGHOST = $uri.Host; $env:PGPORT = "$($uri.Port)"; $env:PGDATABASE = [uri]::UnescapeDataString($uri.AbsolutePath.TrimStart('/'))
                $env:PGUSER = [uri]::UnescapeDataString($userInfo[0])
                $env:PGPASSWORD = if ($userInfo.Count -gt 1) { [uri]::UnescapeDataString($userInfo[1]) } else { $null }

                $done = New-ColumnRename -Table $table -Column customer -NewName client |
                    Invoke-Backfill |
                    Test-ColumnParity |
                    Complete-Contract -Confirm:$false
            }
            finally {
                foreach ($entry in $saved.GetEnumerator()) { [Environment]::SetEnvironmentVariable($entry.Key, $entry.Value) }
            }

            "$($done.Phase)" | Should -Be 'Completed'
            Get-ColumnList -Table $table | Should -Be 'id,qty,client'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE client = 'c' || id;" | Should -Be '50'
        }
    }

    Context 'on a partitioned table' {
        BeforeAll {
            $cs = Get-ZdtTestConnection
        }

        BeforeEach {
            $table = New-ZdtTableName
            New-ZdtPartitionedTestTable -Table $table
            Invoke-Psql "ALTER TABLE public.$table ADD PRIMARY KEY (id, created, region); CREATE INDEX ${table}_qty_idx ON public.$table (qty);" | Out-Null
        }

        AfterEach {
            Remove-ZdtTestTable -Table $table
        }

        It 'renames by copy end to end: New-ColumnRename | Invoke-Backfill | Test-ColumnParity | Complete-Contract' {
            $done = New-ColumnRename -ConnectionString $cs -Table $table -Column qty -NewName amount -Confirm:$false |
                Invoke-Backfill |
                Test-ColumnParity |
                Complete-Contract -Confirm:$false
            "$($done.Phase)" | Should -Be 'Completed'
            Get-ColumnList -Table $table | Should -Be 'id,created,region,amount'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE amount = id;" | Should -Be '200'
            # The index copy is the parent's, with every partition's attached and valid.
            Invoke-Psql "SELECT count(*) FROM pg_partition_tree('public.${table}_amount_idx') t JOIN pg_index i ON i.indexrelid = t.relid WHERE i.indisvalid;" | Should -Be '6'
            Invoke-Psql "SELECT count(*) FROM pg_trigger g JOIN pg_partition_tree('public.$table') t ON t.relid = g.tgrelid WHERE g.tgname LIKE '%zdt%';" | Should -Be '0'
        }

        It 'a column of the partition key is refused, naming why, and nothing changes' {
            Invoke-Psql "ALTER TABLE public.$table DROP CONSTRAINT ${table}_pkey;" | Out-Null
            $record = { New-ColumnRename -ConnectionString $cs -Table $table -Column created -NewName day -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId ColumnCannotBeCopied -Category InvalidOperation -Command New-ColumnRename -MessageLike '*partition key*'
            Get-ColumnList -Table $table | Should -Be 'id,created,region,qty'
        }
    }
}
