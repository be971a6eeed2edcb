# Pester 5. The plan as data, common to every cmdlet that runs DDL: -PlanOnly outputs the plan and
# changes nothing, -PlanPath writes its SQL script for review (a pipeline artifact) and changes
# nothing, -ExpectedPlan runs only the SQL of an approved plan file. Run against the test database.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection

    # What a plan must not change: the table's columns, indexes, constraints, triggers and kind, and
    # the ledger's rows and events.
    function Get-ZdtShape([string] $Table) {
        Invoke-Psql @"
SELECT (SELECT relkind::text FROM pg_class WHERE oid = to_regclass('public.$Table'))
    || '|' || (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = to_regclass('public.$Table') AND attnum > 0 AND NOT attisdropped)
    || '|' || (SELECT count(*) FROM pg_index WHERE indrelid = to_regclass('public.$Table'))
    || '|' || (SELECT count(*) FROM pg_constraint WHERE conrelid = to_regclass('public.$Table'))
    || '|' || (SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass('public.$Table'))
    || '|' || (SELECT count(*) FROM zdt.migration) || '|' || (SELECT count(*) FROM zdt.migration_event)
    || '|' || (SELECT count(*) FROM zdt.migration WHERE backfill_status IS NOT NULL);
"@
    }

    # The ledger exists before the first shape is read.
    $scratch = New-ZdtTableName
    New-ZdtTestTable -Table $scratch
    New-Index -ConnectionString $cs -Table $scratch -Column qty -Confirm:$false | Out-Null
}

AfterAll {
    Remove-ZdtTestTable -Table $scratch
}

Describe 'The plan as data (-PlanOnly, -PlanPath, -ExpectedPlan)' {
    BeforeEach {
        $table = New-ZdtTableName
        New-ZdtTestTable -Table $table
        $planFile = Join-Path ([System.IO.Path]::GetTempPath()) "zdt-plan-$([guid]::NewGuid().ToString('N'))" 'plan.sql'
    }

    AfterEach {
        Remove-ZdtTestTable -Table $table -AlsoDrop "${table}_new", "${table}_parent"
        Remove-Item -Path (Split-Path $planFile) -Recurse -ErrorAction SilentlyContinue
    }

    # Each DDL cmdlet: Setup (optional) makes what its phase follows and returns the migration id.
    It '<Name> -PlanOnly outputs the plan (steps, SQL, lock, why) and -PlanPath writes its script; neither changes anything' -TestCases @(
        @{ Name = 'New-TableRename'; Plan = { param($t, $id) New-TableRename -ConnectionString $cs -Table $t -NewName "${t}_new" @args } }
        @{ Name = 'New-ColumnRename'; Plan = { param($t, $id) New-ColumnRename -ConnectionString $cs -Table $t -Column customer -NewName client @args } }
        @{ Name = 'New-ColumnTypeChange'; Plan = { param($t, $id) New-ColumnTypeChange -ConnectionString $cs -Table $t -Column qty -Type bigint @args } }
        @{ Name = 'Add-Column'; Plan = { param($t, $id) Add-Column -ConnectionString $cs -Table $t -Column note -Type text @args } }
        @{ Name = 'Set-ColumnNotNull'; Plan = { param($t, $id) Set-ColumnNotNull -ConnectionString $cs -Table $t -Column customer @args } }
        @{ Name = 'New-Index'; Plan = { param($t, $id) New-Index -ConnectionString $cs -Table $t -Column qty @args } }
        @{ Name = 'Remove-Index'; Setup = { param($t) Invoke-Psql "CREATE INDEX ${t}_qty ON public.$t (qty);" | Out-Null }; Plan = { param($t, $id) Remove-Index -ConnectionString $cs -Name "${t}_qty" @args } }
        @{ Name = 'Add-CheckConstraint'; Plan = { param($t, $id) Add-CheckConstraint -ConnectionString $cs -Table $t -Expression 'qty > 0' @args } }
        @{ Name = 'Add-ForeignKey'; Setup = { param($t) Invoke-Psql "CREATE TABLE public.${t}_parent (id int PRIMARY KEY); INSERT INTO public.${t}_parent SELECT g FROM generate_series(1, 100) g;" | Out-Null }; Plan = { param($t, $id) Add-ForeignKey -ConnectionString $cs -Table $t -Column qty -ReferencedTable "${t}_parent" @args } }
        @{ Name = 'Add-UniqueConstraint'; Plan = { param($t, $id) Add-UniqueConstraint -ConnectionString $cs -Table $t -Column customer @args } }
        @{ Name = 'Add-PrimaryKey'; Setup = { param($t) Invoke-Psql "ALTER TABLE public.$t DROP CONSTRAINT ${t}_pkey;" | Out-Null }; Plan = { param($t, $id) Add-PrimaryKey -ConnectionString $cs -Table $t -Column id @args } }
        @{ Name = 'Invoke-SafeDdl'; Plan = { param($t, $id) Invoke-SafeDdl -ConnectionString $cs -Sql "ALTER TABLE public.$t ADD COLUMN note text" @args } }
        @{ Name = 'Invoke-Backfill'; Setup = { param($t) (New-ColumnRename -ConnectionString $cs -Table $t -Column customer -NewName client -Confirm:$false).Id }; Plan = { param($t, $id) Invoke-Backfill -ConnectionString $cs -Id $id @args } }
        @{ Name = 'Complete-Contract'; Setup = { param($t) (New-TableRename -ConnectionString $cs -Table $t -NewName "${t}_new" -Confirm:$false).Id }; Plan = { param($t, $id) Complete-Contract -ConnectionString $cs -Id $id @args } }
        @{ Name = 'Undo-Migration'; Setup = { param($t) (New-TableRename -ConnectionString $cs -Table $t -NewName "${t}_new" -Confirm:$false).Id }; Plan = { param($t, $id) Undo-Migration -ConnectionString $cs -Id $id @args } }
        @{ Name = 'Complete-VersionContract'; Setup = { param($t) (New-ColumnRename -ConnectionString $cs -Table $t -Column customer -NewName client -Strategy View -VersionSchema "v_$t" -Confirm:$false).Id }; Plan = { param($t, $id) Complete-VersionContract -ConnectionString $cs -VersionSchema "v_$t" @args } }
    ) {
        # Strict mode: a case without a Setup has no such variable.
        $setup = Get-Variable -Name Setup -ValueOnly -ErrorAction SilentlyContinue
        $id = if ($setup) { & $setup $table } else { $null }
        # The table a rename's view or a contract's drop works on, for the shape.
        $before = Get-ZdtShape $table

        $planned = & $Plan $table $id -PlanOnly
        @($planned).Count | Should -Be 1
        $planned | Get-ZdtTypeName | Should -Be 'ZeroDowntime.Engine.Planning.PhasePlan'
        $planned.AlreadyDone | Should -BeFalse
        $planned.Steps.Count | Should -BeGreaterThan 0
        foreach ($step in $planned.Steps) {
            $step.Title | Should -Not -BeNullOrEmpty
            $step.Why | Should -Not -BeNullOrEmpty
            "$($step.Lock)" | Should -Not -BeNullOrEmpty
            $step.LockTarget | Should -Not -BeNullOrEmpty
            $step.Statements.Count | Should -BeGreaterThan 0
            $planned.Script | Should -Match ([regex]::Escape($step.Statements[0]))
        }
        $planned.Script | Should -Match "^-- $([regex]::Escape($planned.Summary))"
        # A version's contract spans several migrations: it names none.
        if ($id -and $Name -ne 'Complete-VersionContract') { $planned.MigrationId | Should -Be $id }

        $written = & $Plan $table $id -PlanPath $planFile
        $written.Key | Should -Be $planned.Key
        $text = Get-Content -Path $planFile -Raw
        $text | Should -Match "^-- ZeroDowntime plan: $([regex]::Escape($planned.Key))\r?\n"
        $text | Should -Match ([regex]::Escape($planned.Script.Split("`n")[-2]))

        Get-ZdtShape $table | Should -Be $before
    }

    It '-ExpectedPlan runs an approved plan, refuses one whose SQL changed since (PlanNotApproved, nothing changed), and -PlanOnly with it only checks' {
        $null = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -PlanPath $planFile
        # Reviewers may annotate the file; only its SQL counts.
        Add-Content -Path $planFile -Value '-- Approved by the DBA on duty.'
        (New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -PlanOnly -ExpectedPlan $planFile).Key | Should -Match 'Expand RenameTable'

        Invoke-Psql "ALTER TABLE public.$table ADD COLUMN added_later int;" | Out-Null
        $before = Get-ZdtShape $table
        $record = { New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -ExpectedPlan $planFile -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId PlanNotApproved -Category InvalidOperation -Command New-TableRename -MessageLike "*not the approved plan*plan.sql*Nothing was changed*"
        $record.ErrorDetails.RecommendedAction | Should -Match '-ExpectedPlan'
        Get-ZdtShape $table | Should -Be $before

        # Planned again and approved again: it runs, and says it checked.
        $null = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -PlanPath $planFile
        $migration = New-TableRename -ConnectionString $cs -Table $table -NewName "${table}_new" -ExpectedPlan $planFile -Confirm:$false -InformationVariable log
        "$($migration.Phase)" | Should -Be 'Expanded'
        ($log -join "`n") | Should -Match 'The SQL planned now is the approved plan'
    }

    It '-ExpectedPlan with another -LockTimeout than the approved plan is refused: the lock_timeout is part of the SQL' {
        $null = Add-CheckConstraint -ConnectionString $cs -Table $table -Expression 'qty > 0' -PlanPath $planFile
        $record = { Add-CheckConstraint -ConnectionString $cs -Table $table -Expression 'qty > 0' -LockTimeout '1s' -ExpectedPlan $planFile -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $record.FullyQualifiedErrorId | Should -BeLike 'PlanNotApproved,*'
        $record.Exception.Message | Should -Match "approved 'SET LOCAL lock_timeout = '200ms';', now 'SET LOCAL lock_timeout = '1000ms';'"
        Invoke-Psql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.$table'::regclass AND contype = 'c';" | Should -Be '0'
    }

    It 'a missing plan file, or a file that is not a plan, is refused before anything runs' {
        $record = { New-Index -ConnectionString $cs -Table $table -Column qty -ExpectedPlan (Join-Path (Split-Path $planFile) 'none.sql') -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId PlanNotApproved -Category ObjectNotFound -Command New-Index -MessageLike '*does not exist*'
        $null = New-Item -ItemType Directory -Path (Split-Path $planFile) -Force
        Set-Content -Path $planFile -Value "CREATE INDEX ON public.$table (qty);"
        $record = { New-Index -ConnectionString $cs -Table $table -Column qty -ExpectedPlan $planFile -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId PlanNotApproved -Category InvalidData -Command New-Index -MessageLike '*not a ZeroDowntime plan file*'
        Invoke-Psql "SELECT count(*) FROM pg_index WHERE indrelid = 'public.$table'::regclass;" | Should -Be '1'
    }

    It 'a contract can be planned only once its migration is ready (PhaseOutOfOrder before); the approved contract runs, and run again needs no approval' {
        $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
        $record = { Complete-Contract -ConnectionString $cs -Id $migration.Id -PlanOnly -ErrorAction Stop } | Should -Throw -PassThru
        $record.FullyQualifiedErrorId | Should -BeLike 'PhaseOutOfOrder,*'

        $migration | Invoke-Backfill -Confirm:$false | Test-ColumnParity | Out-Null
        $plan = Complete-Contract -ConnectionString $cs -Id $migration.Id -PlanPath $planFile
        $plan.Key | Should -Be "Contract RenameColumn on `"public`".`"$table`" (migration $($migration.Id))"
        Get-ColumnList -Table $table | Should -Be 'id,customer,qty,client'

        "$((Complete-Contract -ConnectionString $cs -Id $migration.Id -ExpectedPlan $planFile -Confirm:$false).Phase)" | Should -Be 'Completed'
        Get-ColumnList -Table $table | Should -Be 'id,qty,client'
        # A retried stage: nothing to run, so nothing to approve; -PlanOnly shows a plan with no step.
        "$((Complete-Contract -ConnectionString $cs -Id $migration.Id -ExpectedPlan $planFile -Confirm:$false -ErrorAction Stop).Phase)" | Should -Be 'Completed'
        $again = Complete-Contract -ConnectionString $cs -Id $migration.Id -PlanOnly
        $again.AlreadyDone | Should -BeTrue
        $again.Steps.Count | Should -Be 0
    }

    It 'the plans of several piped inputs go to one file, and each input runs against its own section' {
        Invoke-Psql "CREATE INDEX ${table}_a ON public.$table (qty); CREATE INDEX ${table}_b ON public.$table (customer);" | Out-Null
        $plans = @([pscustomobject]@{ Name = "${table}_a" }, [pscustomobject]@{ Name = "${table}_b" } | Remove-Index -ConnectionString $cs -PlanPath $planFile)
        $plans.Count | Should -Be 2
        @(Select-String -Path $planFile -Pattern '^-- ZeroDowntime plan: Apply DropIndex').Count | Should -Be 2
        $done = @([pscustomobject]@{ Name = "${table}_b" }, [pscustomobject]@{ Name = "${table}_a" } | Remove-Index -ConnectionString $cs -ExpectedPlan $planFile -Confirm:$false)
        $done.Count | Should -Be 2
        Invoke-Psql "SELECT count(*) FROM pg_index WHERE indrelid = 'public.$table'::regclass;" | Should -Be '1'
    }

    It 'a plan shows as one line at 80 columns, and its steps as lock, lock target and title' {
        $planned = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -PlanOnly
        $lines = @(($planned | Out-String -Width 80) -split '\r?\n' | Where-Object { $_.Trim() })
        $lines[0] | Should -Match '^Action\s+Operation\s+Id\s+Steps\s+Target$'
        $lines[2] | Should -Match "^Expand\s+RenameColumn\s+$($planned.Steps.Count)\s+`"public`"\.`"$table`"$"
        $steps = ($planned.Steps | Out-String -Width 80)
        $steps | Should -Match '(?m)^Lock\s+LockTarget\s+Title'
        $steps | Should -Match '(?m)^AccessExclusive\s+"public"\."zdt_p_\w+"\s+Add "client"'
    }

    It '-PlanPath to a place that cannot be written is a PlanNotWritten error, and nothing runs' {
        $file = Join-Path (Split-Path $planFile) 'a-file'
        $null = New-Item -ItemType File -Path $file -Force
        $record = { New-Index -ConnectionString $cs -Table $table -Column qty -PlanPath (Join-Path $file 'plan.sql') -ErrorAction Stop } | Should -Throw -PassThru
        Assert-ZdtErrorRecord -ErrorRecord $record -ErrorId PlanNotWritten -Category PermissionDenied -Command New-Index -MessageLike '*could not be written*Nothing was changed*'
        Invoke-Psql "SELECT count(*) FROM pg_index WHERE indrelid = 'public.$table'::regclass;" | Should -Be '1'
    }

    It '-PlanPath takes a path relative to the current location, and -WhatIf still prints the plan as before' {
        $directory = Split-Path $planFile
        $null = New-Item -ItemType Directory -Path $directory -Force
        Push-Location -Path $directory
        try {
            $null = New-Index -ConnectionString $cs -Table $table -Column qty -PlanPath 'relative.sql'
        }
        finally {
            Pop-Location
        }
        Join-Path $directory 'relative.sql' | Should -Exist
        $whatIf = Get-ZdtWhatIfText { New-Index -ConnectionString $cs -Table $table -Column qty -WhatIf }
        $whatIf | Should -Match '(?s)What if:.*CREATE INDEX CONCURRENTLY'
    }
}
