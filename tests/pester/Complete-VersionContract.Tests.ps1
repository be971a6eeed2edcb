# Pester 5. Complete-VersionContract as a user meets it: completing every column rename of a version schema at once.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'Complete-VersionContract' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name Complete-VersionContract | Should -Be @(
                'VersionSchema [String] Mandatory Position=0',
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
            Assert-ZdtCommandHelp -Name Complete-VersionContract
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact High' {
            $attribute = (Get-Command -Name Complete-VersionContract).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'High'
        }

        It 'declares its output type' {
            (Get-Command -Name Complete-VersionContract).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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


        It '-WhatIf prints the contract SQL and changes nothing' {
            $version = "v_$table"
            New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Strategy View -VersionSchema $version -Confirm:$false | Out-Null
            $whatIf = Get-ZdtWhatIfText { Complete-VersionContract -ConnectionString $cs -VersionSchema $version -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match ([regex]::Escape('RENAME COLUMN "customer" TO "client"'))
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
        }

        It 'completes every rename of the version and outputs the migrations Completed' {
            $version = "v_$table"
            New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Strategy View -VersionSchema $version -Confirm:$false | Out-Null
            $done = @(Complete-VersionContract -ConnectionString $cs -VersionSchema $version -Confirm:$false)
            $done.Count | Should -Be 1
            $done[0] | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Migration'
            "$($done[0].Phase)" | Should -Be 'Completed'
            Get-ColumnList -Table $table | Should -Be 'id,client,qty'
            Invoke-Psql "SELECT count(*) FROM pg_namespace WHERE nspname = '$version';" | Should -Be '0'
        }

        It 'an unknown version schema is an ObjectNotFound error about it; with -ErrorAction Stop it throws' {
            $record = { Complete-VersionContract -ConnectionString $cs -VersionSchema "nope_$table" -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId VersionNotFound -Category ObjectNotFound -Command Complete-VersionContract -TargetObject "nope_$table"
        }
    }
}
