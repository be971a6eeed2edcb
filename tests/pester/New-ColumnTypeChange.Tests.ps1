# Pester 5. New-ColumnTypeChange as a user meets it: the expand phase of a column type change, in
# place when the server needs no rewrite, else by a shadow column kept in step by trigger.
# The surface is pinned (parameters, help, ShouldProcess, output type); the behaviour runs against
# the test database (ZDT_TEST_CONNECTION, see TestSupport.ps1), with psql to set up and inspect.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

Describe 'New-ColumnTypeChange' {
    Context 'surface' {
        It 'has exactly these parameters (name, type, mandatory, position, pipeline binding)' {
            Get-ZdtParameterSummary -Name New-ColumnTypeChange | Should -Be @(
                'Table [String] Mandatory Position=0',
                'Column [String] Mandatory Position=1',
                'Type [String] Mandatory Position=2',
                'Schema [String]',
                'Using [String]',
                'ReverseUsing [String]',
                'Cascade [SwitchParameter]',
                'RejectUnconvertibleWrites [SwitchParameter]',
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
            Assert-ZdtCommandHelp -Name New-ColumnTypeChange
        }

        It 'supports -WhatIf and -Confirm, with ConfirmImpact Medium' {
            $attribute = (Get-Command -Name New-ColumnTypeChange).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
            $attribute.SupportsShouldProcess | Should -BeTrue
            "$($attribute.ConfirmImpact)" | Should -Be 'Medium'
        }

        It 'declares its output type' {
            (Get-Command -Name New-ColumnTypeChange).OutputType.Name | Should -Be @('ZeroDowntime.Engine.Migration', 'ZeroDowntime.Engine.Planning.PhasePlan') -Because 'it outputs the migration, or with -PlanOnly its plan'
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
            Remove-ZdtTestTable -Table $table -AlsoDrop "${table}_child"
        }

        It '-WhatIf prints the plan with the exact SQL and changes nothing' {
            $whatIf = Get-ZdtWhatIfText { New-ColumnTypeChange -ConnectionString $cs -Table $table -Column qty -Type bigint -WhatIf }
            $whatIf | Should -Match 'What if:'
            $whatIf | Should -Match ([regex]::Escape('ADD COLUMN "zdt_qty_new" bigint'))
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
            Get-Migration -ConnectionString $cs -Table $table | Should -BeNullOrEmpty
        }

        It 'runs the pipeline New-ColumnTypeChange | Invoke-Backfill | Test-ColumnParity | Complete-Contract' {
            $done = New-ColumnTypeChange -ConnectionString $cs -Table $table -Column qty -Type bigint -Confirm:$false |
                Invoke-Backfill |
                Test-ColumnParity |
                Complete-Contract -Confirm:$false
            "$($done.Phase)" | Should -Be 'Completed'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
            Invoke-Psql "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.$table'::regclass AND attname = 'qty';" | Should -Be 'bigint'
            Invoke-Psql "SELECT sum(qty) FROM public.$table;" | Should -Be '1275'
        }

        It 'a change the server makes without a rewrite is done at once, with nothing to backfill' {
            Invoke-Psql "ALTER TABLE public.$table ALTER COLUMN customer TYPE varchar(50);" | Out-Null
            $migration = New-ColumnTypeChange -ConnectionString $cs -Table $table -Column customer -Type 'varchar(100)' -Confirm:$false
            $migration.Strategy | Should -Be 'InPlace'
            Invoke-Psql "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.$table'::regclass AND attname = 'customer';" | Should -Be 'character varying(100)'
            "$(($migration | Complete-Contract -Confirm:$false).Phase)" | Should -Be 'Completed'
        }

        It 'a column referenced by another table is refused without -Cascade, naming the foreign key' {
            Invoke-Psql "CREATE TABLE public.${table}_child (parent_id bigint REFERENCES public.$table (id));" | Out-Null
            $record = { New-ColumnTypeChange -ConnectionString $cs -Table $table -Column id -Type numeric -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId ColumnReferenced -Category InvalidOperation -Command New-ColumnTypeChange -MessageLike "*${table}_child*"
        }

        It '-Cascade changes the referencing column too, in the same migration' {
            Invoke-Psql "ALTER TABLE public.$table ALTER COLUMN id TYPE integer; CREATE TABLE public.${table}_child (id serial PRIMARY KEY, parent_id integer NOT NULL REFERENCES public.$table (id)); INSERT INTO public.${table}_child (parent_id) SELECT id FROM public.$table;" | Out-Null
            $migration = New-ColumnTypeChange -ConnectionString $cs -Table $table -Column id -Type bigint -Cascade -Confirm:$false
            $migration.Details['Referencing'] | Should -BeLike "*${table}_child*parent_id*"
            $done = $migration | Invoke-Backfill | Test-ColumnParity | Complete-Contract -Confirm:$false
            "$($done.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attrelid::regclass::text) FROM pg_attribute WHERE (attrelid, attname) IN (('public.$table'::regclass, 'id'), ('public.${table}_child'::regclass, 'parent_id'));" | Should -Be 'bigint,bigint'
            Get-ColumnList -Table "${table}_child" | Should -Be 'id,parent_id'
            # The identity key kept its identity (same sequence, now bigint).
            Invoke-Psql "SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = pg_get_serial_sequence('public.$table', 'id')::regclass;" | Should -Be 'bigint'
        }

        It 'values that do not convert are counted by Test-ColumnParity and the contract refuses' {
            Invoke-Psql "UPDATE public.$table SET customer = '7' WHERE id > 1; UPDATE public.$table SET customer = 'seven' WHERE id = 1;" | Out-Null
            $migration = New-ColumnTypeChange -ConnectionString $cs -Table $table -Column customer -Type integer -Using 'trim(customer)::integer' -Confirm:$false
            $parity = $migration | Invoke-Backfill | Test-ColumnParity -ErrorAction SilentlyContinue -ErrorVariable failures
            $parity.Mismatches | Should -Be 1
            $failures[0].FullyQualifiedErrorId | Should -BeLike 'NotInParity,*'
            { $migration | Complete-Contract -Confirm:$false -ErrorAction Stop } | Should -Throw
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty,zdt_customer_new'
        }

        It 'Undo-Migration drops the shadow column' {
            $undone = New-ColumnTypeChange -ConnectionString $cs -Table $table -Column qty -Type bigint -Confirm:$false | Undo-Migration -Confirm:$false
            "$($undone.Phase)" | Should -Be 'Undone'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
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

        It 'changes the type by copy end to end: New-ColumnTypeChange | Invoke-Backfill | Test-ColumnParity | Complete-Contract' {
            $done = New-ColumnTypeChange -ConnectionString $cs -Table $table -Column qty -Type bigint -Confirm:$false |
                Invoke-Backfill |
                Test-ColumnParity |
                Complete-Contract -Confirm:$false
            "$($done.Phase)" | Should -Be 'Completed'
            Get-ColumnList -Table $table | Should -Be 'id,created,region,qty'
            # Every relation of the tree (parent, sub-partitioned level, 4 leaves) has the new type and the values.
            Invoke-Psql "SELECT count(*) FROM pg_partition_tree('public.$table') t JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = 'qty' WHERE a.atttypid = 'bigint'::regtype;" | Should -Be '6'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE qty = id;" | Should -Be '200'
            # The index keeps its name on the parent and on every partition, attached and valid, as a plain ALTER COLUMN TYPE leaves it.
            Invoke-Psql "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_partition_tree('public.${table}_qty_idx') t JOIN pg_index i ON i.indexrelid = t.relid AND i.indisvalid JOIN pg_class c ON c.oid = t.relid;" |
                Should -Be "${table}_2020_qty_idx,${table}_2021_eu_qty_idx,${table}_2021_other_qty_idx,${table}_2021_qty_idx,${table}_default_qty_idx,${table}_qty_idx"
            Invoke-Psql "SELECT count(*) FROM pg_trigger g JOIN pg_partition_tree('public.$table') t ON t.relid = g.tgrelid WHERE g.tgname LIKE '%zdt%';" | Should -Be '0'
        }

        It 'changes a primary key column''s type by copy: every level keeps its key, under its name' {
            Invoke-Psql "ALTER TABLE public.$table ALTER COLUMN id TYPE integer; ALTER TABLE public.$table ADD CONSTRAINT ${table}_id_created_region_key UNIQUE (id, created, region);" | Out-Null
            $done = New-ColumnTypeChange -ConnectionString $cs -Table $table -Column id -Type bigint -Confirm:$false |
                Invoke-Backfill |
                Test-ColumnParity |
                Complete-Contract -Confirm:$false
            "$($done.Phase)" | Should -Be 'Completed'
            Invoke-Psql "SELECT count(*) FROM pg_partition_tree('public.$table') t JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = 'id' WHERE a.atttypid = 'bigint'::regtype AND a.attnotnull;" | Should -Be '6'
            # The primary key on the parent, the sub-partitioned level and every leaf, each named as before, attached to the parent's.
            $keys = Invoke-Psql "SELECT c.conname || ':' || pg_get_constraintdef(c.oid) FROM pg_partition_tree('public.$table') t JOIN pg_constraint c ON c.conrelid = t.relid AND c.contype = 'p';"
            ($keys | Sort-Object) -join ',' | Should -Be ((@('', '_2020', '_2021', '_2021_eu', '_2021_other', '_default' | ForEach-Object { "$table${_}_pkey:PRIMARY KEY (id, created, region)" }) | Sort-Object) -join ',')
            Invoke-Psql "SELECT count(*) FROM pg_partition_tree('public.$table') t JOIN pg_constraint c ON c.conrelid = t.relid AND c.contype = 'u' AND c.conname LIKE '%_id_created_region_key';" | Should -Be '6'
            Invoke-Psql "SELECT count(*) FROM public.$table WHERE qty = id;" | Should -Be '200'
            { Invoke-Psql "INSERT INTO public.$table VALUES (1, '2020-01-06', 'us', 1);" } | Should -Throw
        }

        It 'a column of the partition key is refused, naming why, and nothing changes' {
            Invoke-Psql "ALTER TABLE public.$table DROP CONSTRAINT ${table}_pkey;" | Out-Null
            $record = { New-ColumnTypeChange -ConnectionString $cs -Table $table -Column created -Type timestamptz -ErrorAction Stop } | Should -Throw -PassThru
            Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId ColumnCannotBeCopied -Category InvalidOperation -Command New-ColumnTypeChange -MessageLike '*partition key*'
            Invoke-Psql "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.$table'::regclass AND attname = 'created';" | Should -Be 'date'
        }
    }
}
