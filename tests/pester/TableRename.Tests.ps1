# Pester 5. The table-rename lifecycle against a real PostgreSQL database.
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

    # 'r' for a table, 'v' for a view, nothing when no relation has that name in public.
    function Get-RelationKind {
        param([Parameter(Mandatory)] [string] $Name)

        Invoke-Psql "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = '$Name';"
    }
}

Describe 'Table rename lifecycle' {
    BeforeEach {
        # A fresh, uniquely named table for every test, so tests never see each other's state.
        $suffix = [guid]::NewGuid().ToString('N').Substring(0, 10)
        $table = "zdt_pester_$suffix"
        $newName = "zdt_pester_${suffix}_v2"
        Invoke-Psql "CREATE TABLE public.$table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text NOT NULL); INSERT INTO public.$table (note) VALUES ('before');"
    }

    AfterEach {
        # Whatever phase a test left the migration in: undo it if still active, then drop what is left.
        Get-Migration -ConnectionString $cs -Table $table -Active -ErrorAction SilentlyContinue |
            Undo-Migration -Confirm:$false -ErrorAction SilentlyContinue
        # CASCADE on the renamed table also drops the view that depends on it.
        Invoke-Psql "DROP TABLE IF EXISTS public.$newName CASCADE;"
        if ((Get-RelationKind $table) -eq 'v') {
            Invoke-Psql "DROP VIEW public.$table;"
        }
        Invoke-Psql "DROP TABLE IF EXISTS public.$table CASCADE;"
    }

    It 'New-TableRename outputs a migration in phase Expanded' {
        $migration = New-TableRename -ConnectionString $cs -Table $table -NewName $newName -Confirm:$false

        $migration.GetType().FullName | Should -Be 'ZeroDowntime.Engine.Migration'
        $migration.Phase.ToString() | Should -Be 'Expanded'
        $migration.Table | Should -Be $table
        $migration.NewName | Should -Be $newName
        Get-RelationKind $newName | Should -Be 'r'
    }

    It '-WhatIf changes nothing' {
        { New-TableRename -ConnectionString $cs -Table $table -NewName $newName -WhatIf } | Should -Not -Throw

        Get-RelationKind $table | Should -Be 'r'
        Get-RelationKind $newName | Should -BeNullOrEmpty
        Get-Migration -ConnectionString $cs -Table $table -Active | Should -BeNullOrEmpty
    }

    It 'keeps the old name working for INSERT and SELECT after the expand phase' {
        New-TableRename -ConnectionString $cs -Table $table -NewName $newName -Confirm:$false | Out-Null

        Invoke-Psql "INSERT INTO public.$table (note) VALUES ('through the old name');"
        Invoke-Psql "SELECT count(*) FROM public.$table;" | Should -Be '2'
        Invoke-Psql "SELECT note FROM public.$newName ORDER BY id DESC LIMIT 1;" | Should -Be 'through the old name'
    }

    It 'Get-Migration -Table finds the migration' {
        $migration = New-TableRename -ConnectionString $cs -Table $table -NewName $newName -Confirm:$false

        $found = @(Get-Migration -ConnectionString $cs -Table $table)
        $found.Id | Should -Contain $migration.Id
    }

    It 'pipes New-TableRename into Complete-Contract' {
        $completed = New-TableRename -ConnectionString $cs -Table $table -NewName $newName -Confirm:$false |
            Complete-Contract -Confirm:$false

        $completed.Phase.ToString() | Should -Be 'Completed'
        Get-RelationKind $table | Should -BeNullOrEmpty
        Get-RelationKind $newName | Should -Be 'r'
        Invoke-Psql "SELECT note FROM public.$newName;" | Should -Be 'before'
    }

    It 'Undo-Migration restores the original table' {
        $undone = New-TableRename -ConnectionString $cs -Table $table -NewName $newName -Confirm:$false |
            Undo-Migration -Confirm:$false

        $undone.Phase.ToString() | Should -Be 'Undone'
        Get-RelationKind $table | Should -Be 'r'
        Get-RelationKind $newName | Should -BeNullOrEmpty
        Invoke-Psql "SELECT note FROM public.$table;" | Should -Be 'before'
    }

    It 'reports a missing table as a TableNotFound error' {
        $caught = $null
        try {
            New-TableRename -ConnectionString $cs -Table "zdt_missing_$suffix" -NewName "zdt_missing_${suffix}_v2" -Confirm:$false -ErrorAction Stop
        }
        catch {
            $caught = $_
        }

        $caught | Should -Not -BeNullOrEmpty
        $caught.FullyQualifiedErrorId | Should -BeLike 'TableNotFound*'
    }
}
