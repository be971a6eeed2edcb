# Pester 5. The column-rename lifecycle (copy strategy) against a real PostgreSQL database:
# New-ColumnRename | Invoke-Backfill | Test-ColumnParity | Complete-Contract.
#
# Needs:
#   - the module built by 'dotnet build Module.sln' (out/ZeroDowntime);
#   - ZDT_TEST_CONNECTION: a database where the tests may create tables (keyword string or
#     postgresql:// URI; `dotnet test Module.sln` sets it);
#   - psql on PATH: it creates and inspects the test tables. The module's own Npgsql cannot be
#     used from PowerShell: it lives in the module's isolated load context.
# Without a database the tests fail, saying so (none is skipped for want of one).

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection

    # How many user triggers (such as the rename's sync trigger) the table has, as psql prints it.
    function Get-TriggerCount {
        param([Parameter(Mandatory)] [string] $Table)

        Invoke-Psql "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.$Table'::regclass AND NOT tgisinternal;"
    }
}

Describe 'Column rename lifecycle' {
    BeforeEach {
        # A fresh, uniquely named table for every test, so tests never see each other's state.
        $suffix = [guid]::NewGuid().ToString('N').Substring(0, 10)
        $table = "zdt_pester_col_$suffix"
        Invoke-Psql "CREATE TABLE public.$table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, address text); INSERT INTO public.$table (address) VALUES ('a1'), ('a2'), ('a3');"

        # The arguments every test starts the rename with.
        $rename = @{
            ConnectionString = $cs
            Table            = $table
            Column           = 'address'
            NewName          = 'billing_address'
        }
    }

    AfterEach {
        # Whatever phase a test left the migration in: undo it if still active (this also drops the
        # sync trigger and its function), then drop the table.
        Get-Migration -ConnectionString $cs -Table $table -Active -ErrorAction SilentlyContinue |
            Undo-Migration -Confirm:$false -ErrorAction SilentlyContinue
        Invoke-Psql "DROP TABLE IF EXISTS public.$table CASCADE;"
    }

    It 'runs the whole pipeline: the old column is gone and the new one holds the data' {
        $completed = New-ColumnRename @rename -Confirm:$false |
            Invoke-Backfill |
            Test-ColumnParity |
            Complete-Contract -Confirm:$false

        $completed.GetType().FullName | Should -Be 'ZeroDowntime.Engine.Migration'
        $completed.Phase.ToString() | Should -Be 'Completed'
        Get-ColumnList $table | Should -Be 'id,billing_address'
        Get-TriggerCount $table | Should -Be '0'
        Invoke-Psql "SELECT string_agg(billing_address, ',' ORDER BY id) FROM public.$table;" | Should -Be 'a1,a2,a3'
    }

    It 'New-ColumnRename outputs a migration in phase Expanded' {
        $migration = New-ColumnRename @rename -Confirm:$false

        $migration.GetType().FullName | Should -Be 'ZeroDowntime.Engine.Migration'
        $migration.Phase.ToString() | Should -Be 'Expanded'
        $migration.Column | Should -Be 'address'
        $migration.NewName | Should -Be 'billing_address'
        Get-ColumnList $table | Should -Be 'id,address,billing_address'
        # The sync triggers: INSERT or UPDATE OF the old name, UPDATE OF the new name.
        Get-TriggerCount $table | Should -Be '2'
    }

    It '-WhatIf on New-ColumnRename changes nothing' {
        $output = New-ColumnRename @rename -WhatIf

        $output | Should -BeNullOrEmpty
        Get-ColumnList $table | Should -Be 'id,address'
        Get-TriggerCount $table | Should -Be '0'
        Get-Migration -ConnectionString $cs -Table $table -Active | Should -BeNullOrEmpty
    }

    It '-WhatIf on Invoke-Backfill writes no row' {
        $migration = New-ColumnRename @rename -Confirm:$false

        $output = $migration | Invoke-Backfill -WhatIf

        $output | Should -BeNullOrEmpty
        Invoke-Psql "SELECT count(*) FROM public.$table WHERE billing_address IS NOT NULL;" | Should -Be '0'
        $after = Get-Migration -ConnectionString $cs -Id $migration.Id
        $after.Phase.ToString() | Should -Be 'Expanded'
        $after.RowsBackfilled | Should -Be 0
    }

    It '-WhatIf on Complete-Contract changes nothing' {
        $parity = New-ColumnRename @rename -Confirm:$false | Invoke-Backfill | Test-ColumnParity

        $output = $parity | Complete-Contract -WhatIf

        $output | Should -BeNullOrEmpty
        Get-ColumnList $table | Should -Be 'id,address,billing_address'
        # The sync triggers: INSERT or UPDATE OF the old name, UPDATE OF the new name.
        Get-TriggerCount $table | Should -Be '2'
        (Get-Migration -ConnectionString $cs -Id $parity.Id).Phase.ToString() | Should -Be 'Verified'
    }

    It 'Get-Migration -Table finds the migration between phases' {
        $migration = New-ColumnRename @rename -Confirm:$false

        $found = @(Get-Migration -ConnectionString $cs -Table $table -Active)
        $found.Id | Should -Contain $migration.Id
        ($found | Where-Object Id -EQ $migration.Id).Phase.ToString() | Should -Be 'Expanded'

        $migration | Invoke-Backfill | Out-Null

        $found = @(Get-Migration -ConnectionString $cs -Table $table -Active)
        $backfilled = $found | Where-Object Id -EQ $migration.Id
        $backfilled.Phase.ToString() | Should -Be 'Backfilled'
        $backfilled.RowsBackfilled | Should -Be 3
    }

    It 'Invoke-Backfill copies every existing row' {
        $backfilled = New-ColumnRename @rename -Confirm:$false | Invoke-Backfill

        $backfilled.Phase.ToString() | Should -Be 'Backfilled'
        Invoke-Psql "SELECT count(*) FROM public.$table WHERE billing_address IS DISTINCT FROM address;" | Should -Be '0'
    }

    It 'Test-ColumnParity returns InParity $true after the backfill' {
        $parity = New-ColumnRename @rename -Confirm:$false | Invoke-Backfill | Test-ColumnParity

        $parity.GetType().FullName | Should -Be 'ZeroDowntime.Engine.ParityResult'
        $parity.InParity | Should -BeTrue
        $parity.Mismatches | Should -Be 0
        $parity.RowsChecked | Should -Be 3
        (Get-Migration -ConnectionString $cs -Id $parity.Id).Phase.ToString() | Should -Be 'Verified'
    }

    It 'Test-ColumnParity before the backfill writes a NotInParity error and still outputs the result' {
        $migration = New-ColumnRename @rename -Confirm:$false

        $parity = $migration | Test-ColumnParity -ErrorVariable failures -ErrorAction SilentlyContinue

        $parity.InParity | Should -BeFalse
        $parity.Mismatches | Should -Be 3
        @($failures).Count | Should -Be 1
        "$failures" | Should -BeLike '*not in parity*'
    }

    It 'reports a missing column as a ColumnNotFound error' {
        $caught = $null
        try {
            New-ColumnRename -ConnectionString $cs -Table $table -Column "zdt_missing_$suffix" -NewName 'whatever' -Confirm:$false -ErrorAction Stop
        }
        catch {
            $caught = $_
        }

        $caught | Should -Not -BeNullOrEmpty
        $caught.FullyQualifiedErrorId | Should -BeLike 'ColumnNotFound*'
        Get-ColumnList $table | Should -Be 'id,address'
    }

    It 'Undo-Migration after New-ColumnRename restores the table' {
        $undone = New-ColumnRename @rename -Confirm:$false |
            Undo-Migration -Confirm:$false

        $undone.Phase.ToString() | Should -Be 'Undone'
        Get-ColumnList $table | Should -Be 'id,address'
        Get-TriggerCount $table | Should -Be '0'
        Invoke-Psql "SELECT string_agg(address, ',' ORDER BY id) FROM public.$table;" | Should -Be 'a1,a2,a3'
    }
}
