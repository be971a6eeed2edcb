# Pester 5. Column renames by view (New-ColumnRename -Strategy View, Complete-VersionContract)
# against a real PostgreSQL database.
#
# Needs:
#   - the module built by 'dotnet build Module.sln' (out/ZeroDowntime);
#   - ZDT_TEST_CONNECTION: a postgresql:// URI of a database where the tests may create tables
#     and schemas (a URI because both psql and the module accept that form);
#   - psql on PATH: it creates and inspects the test tables. The module's own Npgsql cannot be
#     used from PowerShell: it lives in the module's isolated load context.
# Without a database the tests fail, saying so (none is skipped for want of one).

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection

    # The columns of a relation, comma-separated in order; nothing when it does not exist.
    function Get-Columns {
        param([Parameter(Mandatory)] [string] $Schema, [Parameter(Mandatory)] [string] $Name)

        Invoke-Psql "SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$Schema' AND c.relname = '$Name' AND a.attnum > 0 AND NOT a.attisdropped;"
    }

    function Test-Schema {
        param([Parameter(Mandatory)] [string] $Name)

        (Invoke-Psql "SELECT count(*) FROM pg_namespace WHERE nspname = '$Name';") -eq '1'
    }
}

Describe 'Column rename by view' {
    BeforeEach {
        # A fresh, uniquely named table and version schema for every test.
        $suffix = [guid]::NewGuid().ToString('N').Substring(0, 10)
        $table = "zdt_pester_$suffix"
        $version = "zdt_pester_v_$suffix"
        Invoke-Psql "CREATE TABLE public.$table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text NOT NULL); INSERT INTO public.$table (title) VALUES ('before');"
    }

    AfterEach {
        Get-Migration -ConnectionString $cs -Table $table -Active -ErrorAction SilentlyContinue |
            Undo-Migration -Confirm:$false -ErrorAction SilentlyContinue
        Invoke-Psql "DROP SCHEMA IF EXISTS $version CASCADE; DROP TABLE IF EXISTS public.$table CASCADE;"
    }

    It 'New-ColumnRename -Strategy View creates the version view and shows the search_path to set' {
        $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column title -NewName heading -Strategy View -VersionSchema $version -Confirm:$false

        $migration.Phase.ToString() | Should -Be 'Expanded'
        $migration.Operation | Should -Be 'RenameColumnView'
        $migration.Strategy | Should -Be 'View'
        $migration.Details['VersionSchema'] | Should -Be $version
        $migration.Details['SearchPath'] | Should -Be "$version,public"
        $migration.Details['Npgsql'] | Should -Be "Search Path=$version,public"
        $migration.Details['Libpq'] | Should -Be "options=-csearch_path=$version,public"
        $migration.Details['Jdbc'] | Should -Be "currentSchema=$version,public"
        Get-Columns public $table | Should -Be 'id,title'
        Get-Columns $version $table | Should -Be 'id,heading'
    }

    It '-WhatIf changes nothing' {
        { New-ColumnRename -ConnectionString $cs -Table $table -Column title -NewName heading -Strategy View -VersionSchema $version -WhatIf } | Should -Not -Throw

        Test-Schema $version | Should -BeFalse
        Get-Migration -ConnectionString $cs -Table $table -Active | Should -BeNullOrEmpty
    }

    It 'serves the new name to a session with the version schema first in its search_path, and the old one to the others' {
        New-ColumnRename -ConnectionString $cs -Table $table -Column title -NewName heading -Strategy View -VersionSchema $version -Confirm:$false | Out-Null

        Invoke-Psql "SET search_path = $version, public; INSERT INTO $table (heading) VALUES ('new version');"
        Invoke-Psql "INSERT INTO public.$table (title) VALUES ('old version');"
        Invoke-Psql "SET search_path = $version, public; SELECT count(heading) FROM $table;" | Should -Be '3'
        Invoke-Psql "SELECT count(title) FROM public.$table;" | Should -Be '3'
    }

    It 'Complete-VersionContract renames the column and drops the version schema' {
        $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column title -NewName heading -Strategy View -VersionSchema $version -Confirm:$false

        $completed = @($migration | Complete-VersionContract -VersionSchema $version -Confirm:$false)

        $completed.Count | Should -Be 1
        $completed[0].Id | Should -Be $migration.Id
        $completed[0].Phase.ToString() | Should -Be 'Completed'
        Get-Columns public $table | Should -Be 'id,heading'
        Test-Schema $version | Should -BeFalse
        Invoke-Psql "SET search_path = $version, public; SELECT heading FROM $table;" | Should -Be 'before'
    }

    It 'Undo-Migration drops the view and the version schema and leaves the table as it was' {
        $undone = New-ColumnRename -ConnectionString $cs -Table $table -Column title -NewName heading -Strategy View -VersionSchema $version -Confirm:$false |
            Undo-Migration -Confirm:$false

        $undone.Phase.ToString() | Should -Be 'Undone'
        Test-Schema $version | Should -BeFalse
        Get-Columns public $table | Should -Be 'id,title'
    }

    It 'reports a version schema without migrations as a VersionNotFound error' {
        $caught = $null
        try {
            Complete-VersionContract -ConnectionString $cs -VersionSchema $version -Confirm:$false -ErrorAction Stop
        }
        catch {
            $caught = $_
        }

        $caught | Should -Not -BeNullOrEmpty
        $caught.FullyQualifiedErrorId | Should -BeLike 'VersionNotFound*'
    }

    It 'refuses a schema that ZeroDowntime did not create, with VersionSchemaNotOurs' {
        Invoke-Psql "CREATE SCHEMA $version;"
        $caught = $null
        try {
            New-ColumnRename -ConnectionString $cs -Table $table -Column title -NewName heading -Strategy View -VersionSchema $version -Confirm:$false -ErrorAction Stop
        }
        catch {
            $caught = $_
        }

        $caught.FullyQualifiedErrorId | Should -BeLike 'VersionSchemaNotOurs*'
        Get-Columns public $table | Should -Be 'id,title'
    }
}
