# Pester 5. Safe additions against a real PostgreSQL database: Add-Column (instant and backfilled),
# Set-ColumnNotNull, New-Index / Remove-Index, Add-ForeignKey, Add-CheckConstraint,
# Add-UniqueConstraint, Add-PrimaryKey and Invoke-SafeDdl.
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

    # How many indexes of the table are INVALID (left by a failed concurrent build), as psql prints it.
    function Get-InvalidIndexCount {
        param([Parameter(Mandatory)] [string] $Table)

        Invoke-Psql "SELECT count(*) FROM pg_index WHERE indrelid = 'public.$Table'::regclass AND NOT indisvalid;"
    }

    # The names of the table's constraints, joined with commas.
    function Get-ConstraintList {
        param([Parameter(Mandatory)] [string] $Table)

        Invoke-Psql "SELECT COALESCE(string_agg(conname, ',' ORDER BY conname), '') FROM pg_constraint WHERE conrelid = 'public.$Table'::regclass;"
    }
}

Describe 'Safe additions' {
    BeforeEach {
        # Fresh, uniquely named tables for every test, so tests never see each other's state.
        $suffix = [guid]::NewGuid().ToString('N').Substring(0, 10)
        $table = "zdt_pester_add_$suffix"
        $parent = "zdt_pester_cust_$suffix"
        Invoke-Psql "CREATE TABLE public.$parent (id int PRIMARY KEY); INSERT INTO public.$parent VALUES (1), (2);"
        Invoke-Psql "CREATE TABLE public.$table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id int, email text); INSERT INTO public.$table (customer_id, email) VALUES (1, 'a'), (2, 'b'), (1, 'c');"
    }

    AfterEach {
        # Whatever phase a test left a migration in: undo it if still active, then drop the tables.
        Get-Migration -ConnectionString $cs -Table $table -Active -ErrorAction SilentlyContinue |
            Undo-Migration -Confirm:$false -ErrorAction SilentlyContinue
        Invoke-Psql "DROP TABLE IF EXISTS public.$table CASCADE; DROP TABLE IF EXISTS public.$parent CASCADE;"
    }

    It 'Add-Column with a constant default is instant and completes with Complete-Contract' {
        $migration = Add-Column -ConnectionString $cs -Table $table -Column status -Type 'varchar(20)' -Default "'new'" -NotNull -Confirm:$false

        $migration.GetType().FullName | Should -Be 'ZeroDowntime.Engine.Migration'
        $migration.Phase.ToString() | Should -Be 'Expanded'
        $migration.Strategy | Should -Be 'Instant'
        Invoke-Psql "SELECT count(*) FROM public.$table WHERE status = 'new';" | Should -Be '3'

        ($migration | Complete-Contract -Confirm:$false).Phase.ToString() | Should -Be 'Completed'
    }

    It 'Add-Column with a volatile default pipes through Invoke-Backfill and Complete-Contract' {
        $completed = Add-Column -ConnectionString $cs -Table $table -Column token -Type uuid -Default 'gen_random_uuid()' -NotNull -Confirm:$false |
            Invoke-Backfill |
            Complete-Contract -Confirm:$false

        $completed.Phase.ToString() | Should -Be 'Completed'
        $completed.Strategy | Should -Be 'Backfill'
        Invoke-Psql "SELECT count(DISTINCT token) FROM public.$table;" | Should -Be '3'
        Invoke-Psql "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.$table'::regclass AND attname = 'token';" | Should -Be 't'
    }

    It '-WhatIf on Add-Column changes nothing' {
        $output = Add-Column -ConnectionString $cs -Table $table -Column status -Type text -Default "'new'" -WhatIf

        $output | Should -BeNullOrEmpty
        Get-ColumnList $table | Should -Be 'id,customer_id,email'
        Get-Migration -ConnectionString $cs -Table $table -Active | Should -BeNullOrEmpty
    }

    It 'Undo-Migration after Add-Column drops the column' {
        $undone = Add-Column -ConnectionString $cs -Table $table -Column token -Type uuid -Default 'gen_random_uuid()' -Confirm:$false |
            Undo-Migration -Confirm:$false

        $undone.Phase.ToString() | Should -Be 'Undone'
        Get-ColumnList $table | Should -Be 'id,customer_id,email'
    }

    It 'Set-ColumnNotNull then Complete-Contract makes the column NOT NULL' {
        $completed = Set-ColumnNotNull -ConnectionString $cs -Table $table -Column email -Confirm:$false |
            Complete-Contract -Confirm:$false

        $completed.Phase.ToString() | Should -Be 'Completed'
        Invoke-Psql "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.$table'::regclass AND attname = 'email';" | Should -Be 't'
        Get-ConstraintList $table | Should -Be "$($table)_pkey"
    }

    It 'Set-ColumnNotNull refuses with the count when NULLs are in the way' {
        Invoke-Psql "UPDATE public.$table SET email = NULL WHERE id <= 2;"
        $caught = $null
        try {
            Set-ColumnNotNull -ConnectionString $cs -Table $table -Column email -Confirm:$false -ErrorAction Stop
        }
        catch {
            $caught = $_
        }

        $caught | Should -Not -BeNullOrEmpty
        $caught.FullyQualifiedErrorId | Should -BeLike 'NullsPresent*'
        "$caught" | Should -BeLike '*2 row(s)*'
        Get-ConstraintList $table | Should -Be "$($table)_pkey"
    }

    It 'New-Index builds a valid index and Remove-Index drops it' {
        $created = New-Index -ConnectionString $cs -Table $table -Column email -Name "ix_$suffix" -Confirm:$false

        $created.Phase.ToString() | Should -Be 'Completed'
        Invoke-Psql "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.ix_$suffix'::regclass;" | Should -Be 't'

        $dropped = Remove-Index -ConnectionString $cs -Name "ix_$suffix" -Confirm:$false
        $dropped.Phase.ToString() | Should -Be 'Completed'
        Invoke-Psql "SELECT count(*) FROM pg_class WHERE relname = 'ix_$suffix';" | Should -Be '0'
    }

    It 'New-Index -Unique over duplicates fails and leaves no INVALID index' {
        Invoke-Psql "UPDATE public.$table SET email = 'same';"
        $caught = $null
        try {
            New-Index -ConnectionString $cs -Table $table -Column email -Unique -Confirm:$false -ErrorAction Stop
        }
        catch {
            $caught = $_
        }

        $caught.FullyQualifiedErrorId | Should -BeLike 'DuplicateKeys*'
        Get-InvalidIndexCount $table | Should -Be '0'
    }

    It 'Add-ForeignKey validates the key, and refuses orphans leaving nothing behind' {
        $added = Add-ForeignKey -ConnectionString $cs -Table $table -Column customer_id -ReferencedTable $parent -Name "fk_$suffix" -Confirm:$false
        $added.Phase.ToString() | Should -Be 'Completed'
        Invoke-Psql "SELECT convalidated FROM pg_constraint WHERE conname = 'fk_$suffix';" | Should -Be 't'

        Invoke-Psql "ALTER TABLE public.$table DROP CONSTRAINT fk_$suffix; UPDATE public.$table SET customer_id = 99 WHERE id = 1;"
        $caught = $null
        try {
            Add-ForeignKey -ConnectionString $cs -Table $table -Column customer_id -ReferencedTable $parent -Confirm:$false -ErrorAction Stop
        }
        catch {
            $caught = $_
        }

        $caught.FullyQualifiedErrorId | Should -BeLike 'ConstraintViolated*'
        Get-ConstraintList $table | Should -Be "$($table)_pkey"
    }

    It 'Add-CheckConstraint and Add-UniqueConstraint add validated constraints' {
        Add-CheckConstraint -ConnectionString $cs -Table $table -Expression 'customer_id > 0' -Name "ck_$suffix" -Confirm:$false | Out-Null
        Add-UniqueConstraint -ConnectionString $cs -Table $table -Column email -Name "uq_$suffix" -Confirm:$false | Out-Null

        Get-ConstraintList $table | Should -Be "ck_$suffix,uq_$suffix,$($table)_pkey"
    }

    It 'Add-PrimaryKey refuses nullable columns' {
        Invoke-Psql "ALTER TABLE public.$table DROP CONSTRAINT $($table)_pkey;"
        $caught = $null
        try {
            Add-PrimaryKey -ConnectionString $cs -Table $table -Column email -Confirm:$false -ErrorAction Stop
        }
        catch {
            $caught = $_
        }

        $caught.FullyQualifiedErrorId | Should -BeLike 'PrimaryKeyNeedsNotNull*'
    }

    It 'Invoke-SafeDdl warns about CREATE INDEX without CONCURRENTLY and -WhatIf runs nothing' {
        $output = Invoke-SafeDdl -ConnectionString $cs -Sql "CREATE INDEX ix_$suffix ON public.$table (email)" -WhatIf -WarningVariable warnings -WarningAction SilentlyContinue

        $output | Should -BeNullOrEmpty
        "$warnings" | Should -BeLike '*New-Index*'
        Invoke-Psql "SELECT count(*) FROM pg_class WHERE relname = 'ix_$suffix';" | Should -Be '0'
    }

    It 'Invoke-SafeDdl runs CONCURRENTLY outside a transaction' {
        $ran = Invoke-SafeDdl -ConnectionString $cs -Sql "CREATE INDEX CONCURRENTLY ix_$suffix ON public.$table (email)" -Confirm:$false

        $ran.Operation | Should -Be 'SafeDdl'
        $ran.Phase.ToString() | Should -Be 'Completed'
        Invoke-Psql "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.ix_$suffix'::regclass;" | Should -Be 't'
    }
}
