# Pester 5. The module at a DBA's prompt: names complete from the live database (Tab), every
# cmdlet has an online help link.

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection

    # What Tab offers at the end of a command line.
    function Get-ZdtCompletion {
        param([Parameter(Mandatory)] [string] $Line)
        # Strict mode: an empty match list has no CompletionText to enumerate.
        @((TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches) | ForEach-Object { $_.CompletionText }
    }
}

Describe 'Argument completion from the database' {
    BeforeAll {
        $table = New-ZdtTableName
        New-ZdtTestTable -Table $table
        Invoke-Psql "CREATE INDEX ${table}_qty_idx ON public.$table (qty);" | Out-Null
        $quoted = "'" + ($cs -replace "'", "''") + "'"
    }

    AfterAll {
        Remove-ZdtTestTable -Table $table
    }

    It '-Table completes table names (connection from the bound -ConnectionString)' {
        Get-ZdtCompletion "New-ColumnRename -ConnectionString $quoted -Table $($table.Substring(0, 12))" | Should -Contain $table
    }

    It '-Column completes the columns of the bound -Table, in table order' {
        Get-ZdtCompletion "New-ColumnRename -ConnectionString $quoted -Table $table -Column " | Should -Be @('id', 'customer', 'qty')
        Get-ZdtCompletion "Set-ColumnNotNull -ConnectionString $quoted -Table $table -Column cu" | Should -Be @('customer')
    }

    It '-Schema completes schemas; Remove-Index -Name completes index names' {
        Get-ZdtCompletion "New-TableRename -ConnectionString $quoted -Schema pub" | Should -Contain 'public'
        Get-ZdtCompletion "Remove-Index -ConnectionString $quoted -Name ${table}_q" | Should -Be @("${table}_qty_idx")
    }

    It '-Id completes the ids of active migrations from the ledger' {
        $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Confirm:$false
        try {
            Get-ZdtCompletion "Invoke-Backfill -ConnectionString $quoted -Id " | Should -Contain "$($migration.Id)"
        }
        finally {
            $migration | Undo-Migration -Confirm:$false | Out-Null
        }
    }

    It 'completes nothing, quickly and without an error, when the server cannot be reached' {
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $result = Get-ZdtCompletion "New-ColumnRename -ConnectionString 'Host=127.0.0.1;Port=1;Username=x;Database=x' -Table zz"
        $watch.Stop()
        $result | Where-Object { $_ -notmatch '[\\/]' } | Should -BeNullOrEmpty
        # The completer's own budget is 3 s; this only proves it does not hang.
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 20
    }
}

Describe 'Online help' {
    It '<Name> has a HelpUri into docs/cmdlets.md, whose section exists' -TestCases @(
        Get-Command -Module ZeroDowntime | ForEach-Object { @{ Name = $_.Name; Uri = $_.HelpUri } }
    ) {
        $Uri | Should -Be "https://github.com/zerodowntime/ZeroDowntime/blob/main/docs/cmdlets.md#$($Name.ToLowerInvariant())"
        $doc = Get-Content -Raw -Path (Join-Path $script:ZdtRepositoryRoot 'docs' 'cmdlets.md')
        $doc | Should -Match "(?m)^## $([regex]::Escape($Name))\s*$"
    }
}
