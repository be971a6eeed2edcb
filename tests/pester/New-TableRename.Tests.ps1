# Pester 5. New-TableRename as a user meets it: the expand phase of a table rename.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'New-TableRename' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name New-TableRename | Should -Be @(
                'Table [String] Mandatory Position=0',
                'NewName [String] Mandatory Position=1',
                'Schema [String]',
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
            Assert-ZdtCommandHelp -Name New-TableRename
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name New-TableRename).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name New-TableRename).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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
            $whatIf = Get-ZdtWhatIfText { New-TableRename -ConnectionString $cs -Table $table -NewName ${table}_new -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match ([regex]::Escape("ALTER TABLE ""public"".""$table"" RENAME TO ""${table}_new"";"))
            Invoke-Psql "SELECT relkind FROM pg_class WHERE oid = 'public.$table'::regclass;" | Should -Be 'r'
            Get-Migration -ConnectionString $cs -Table $table | Should -BeNullOrEmpty
        }

        It 'outputs a Migration in phase Expanded, shown as a table of Id, Operation, Schema, Table, Column, NewName, Phase' {
            $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false
            $migration | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            "$($migration.Phase)" | Should -Be 'Expanded'
            $migration.NewName | Should -Be "${table}_new"
            $text = $migration | Get-ZdtTableText
            $text | Should -Match 'Id\s+Table\s+Column\s+NewName\s+Phase\s+Operation'
            $text | Should -Match "\b$($migration.Id)\s+$table\s.*Expanded\s+RenameTable"
        }

        It '-Verbose shows the SQL it runs and how long the lock was held' {
            $verbose = @(New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -Confirm:$false -Verbose 4>&1 |
                    Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })
            $text = $verbose.Message -join "`n"
            $text | Should -Match 'RENAME TO'
            $text | Should -Match 'held locks for'
            $text | Should -Not -Match 'Password'
        }

        It 'binds -Table and -NewName by position' {
            $migration = New-TableRename $table "${table}_new" -ConnectionString $cs -Confirm:$false
            $migration.Table | Should -Be $table
        }

        It 'a missing table is an ObjectNotFound error about that table; with -ErrorAction Stop it throws' {
            $record = { New-TableRename -ConnectionString $cs -Table nope -NewName x -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId TableNotFound -Category ObjectNotFound -Command New-TableRename -TargetObject '"public"."nope"' -MessageLike '*"public"."nope" does not exist*'
        }

        It 'refuses a missing mandatory parameter without asking (non-interactive)' {
            { New-TableRename -ConnectionString $cs -Table $table } | Should -Throw -ErrorId 'MissingMandatoryParameter*'
        }
    }
}
