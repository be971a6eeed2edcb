# Pester 5. Invoke-SafeDdl as a user meets it: raw DDL through the lock-safe executor.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Invoke-SafeDdl' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Invoke-SafeDdl | Should -Be @(
                'Sql [String] Mandatory Position=0 ByValue ByPropertyName',
                'Table [String]',
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
            Assert-ZdtCommandHelp -Name Invoke-SafeDdl
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact High' {
            $attribute = (Get-Command -Name Invoke-SafeDdl).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'High'
        }

        It 'declares its output type' {
            (Get-Command -Name Invoke-SafeDdl).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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


        It '-WhatIf prints the statement under its lock_timeout and runs nothing' {
            $whatIf = Get-ZdtWhatIfText { Invoke-SafeDdl -ConnectionString $cs -Sql "ALTER TABLE public.$table ADD COLUMN note text" -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match 'lock_timeout'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
        }

        It 'takes statements from the pipeline (by value) and runs each' {
            "ALTER TABLE public.$table ADD COLUMN note text", "ALTER TABLE public.$table ADD COLUMN extra int" |
                Invoke-SafeDdl -ConnectionString $cs -Confirm:$false | Out-Null
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty,note,extra'
        }

        It 'warns about a statement that would block the table (CREATE INDEX without CONCURRENTLY)' {
            $null = Invoke-SafeDdl -ConnectionString $cs -Sql "CREATE INDEX ${table}_x ON public.$table (qty)" -Confirm:$false -WarningVariable warnings -WarningAction SilentlyContinue
            ($warnings -join ' ') | Should -Match 'CONCURRENTLY'
        }

        It 'a statement on a missing table is an ObjectNotFound error; with -ErrorAction Stop it throws' {
            $record = { Invoke-SafeDdl -ConnectionString $cs -Sql 'ALTER TABLE nope ADD COLUMN x int' -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId TableNotFound -Category ObjectNotFound -Command Invoke-SafeDdl
        }
    }
}
