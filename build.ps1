#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, packages or demonstrates the ZeroDowntime module.

.DESCRIPTION
    Build    dotnet build Module.sln; the build itself lays out the module at out/ZeroDowntime.
    Test     Build, then the README's test command: the xunit tests and every Pester test in
             tests/pester (run by the xunit host in PowerShell 7.6.9, the local tool, with
             Pester 5.7.1 from NuGet) against a real PostgreSQL: ZDT_TEST_CONNECTION if set
             (keyword string or postgresql:// URI), else a container of ZDT_TEST_POSTGRES_IMAGE,
             else a throwaway cluster from local binaries. Writes TestResults/*.trx (xunit, every
             Pester test included) and TestResults/pester.xml (Pester's NUnit XML), both of which
             Azure DevOps' PublishTestResults task reads, and fails if any test failed.
    Package  Build, then zip out/ZeroDowntime into out/ZeroDowntime-<version>.zip.
    Demo     Runs the bench project's demo when it exists, else a table-rename lifecycle against
             ZDT_TEST_CONNECTION (needs psql on PATH).

    Everything works without this script too: 'dotnet build Module.sln -c Release' produces the module.

.EXAMPLE
    ./build.ps1 -Task Test

.EXAMPLE
    pwsh ./build.ps1 -Task Build,Test,Package

    From bash or a YAML step the list arrives as one string ('Build,Test,Package'); it is split on
    commas (and spaces), so both forms work.
#>
[CmdletBinding()]
param(
    # Not ValidateSet: from `pwsh -File`, "Build,Test" is one string, which the set would refuse.
    [string[]] $Task = 'Build',

    [string] $Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$RepoRoot = $PSScriptRoot
$Solution = Join-Path $RepoRoot 'Module.sln'
$OutDir = Join-Path $RepoRoot 'out'
$ModuleDir = Join-Path $OutDir 'ZeroDowntime'
$script:Built = $false

# Runs a native command and stops the build when it fails: native commands do not throw on a
# non-zero exit code by themselves.
function Invoke-Native {
    param(
        [Parameter(Mandatory)] [string] $FilePath,
        [string[]] $ArgumentList = @()
    )

    Write-Host "> $FilePath $($ArgumentList -join ' ')" -ForegroundColor Cyan
    & $FilePath @ArgumentList
    if ($LASTEXITCODE -ne 0) {
        throw "'$FilePath $($ArgumentList -join ' ')' failed with exit code $LASTEXITCODE."
    }
}

function Invoke-BuildTask {
    # Test, Package and Demo all need the build; do it once however many tasks ask.
    if ($script:Built) {
        return
    }

    Invoke-Native dotnet @('build', $Solution, '-c', $Configuration)
    $script:Built = $true
}

function Invoke-TestTask {
    Invoke-BuildTask

    $results = Join-Path $RepoRoot 'TestResults'
    if (Test-Path -Path $results) {
        Remove-Item -Path $results -Recurse -Force
    }
    $env:ZDT_PESTER_RESULT_FILE = Join-Path $results 'pester.xml'
    try {
        # One run: the Pester tests are xunit tests too (tests/ZeroDowntime.Tests/PowerShellHost).
        Invoke-Native dotnet @('test', $Solution, '-c', $Configuration, '--no-build',
            '--logger', 'trx;LogFilePrefix=results', '--results-directory', $results)
    }
    finally {
        Remove-Item -Path Env:ZDT_PESTER_RESULT_FILE -ErrorAction SilentlyContinue
        Write-Host "Test results: $results (xunit TRX: *.trx; Pester NUnit XML: pester.xml)" -ForegroundColor Green
    }
}

function Invoke-PackageTask {
    Invoke-BuildTask
    $manifest = Import-PowerShellDataFile -Path (Join-Path $ModuleDir 'ZeroDowntime.psd1')
    $zip = Join-Path $OutDir "ZeroDowntime-$($manifest.ModuleVersion).zip"

    # The zip holds the ZeroDowntime folder itself, ready to extract into a PSModulePath folder.
    Compress-Archive -Path $ModuleDir -DestinationPath $zip -Force
    Write-Host "Package: $zip" -ForegroundColor Green
}

function Invoke-DemoTask {
    $bench = Join-Path $RepoRoot 'bench' 'ZeroDowntime.Bench'
    if (Test-Path -Path (Join-Path $bench 'ZeroDowntime.Bench.csproj')) {
        Invoke-Native dotnet @('run', '-c', $Configuration, '--project', $bench, '--', 'demo')
        return
    }

    Invoke-BuildTask
    Invoke-TableRenameDemo
}

# The table-rename lifecycle, step by step, on a throw-away table.
function Invoke-TableRenameDemo {
    $connection = $env:ZDT_TEST_CONNECTION
    if (-not $connection) {
        throw 'The demo needs ZDT_TEST_CONNECTION set to a postgresql:// URI of a database it may create a table in.'
    }
    if (-not (Get-Command -Name psql -ErrorAction SilentlyContinue)) {
        throw 'The demo needs psql on PATH to create its demo table.'
    }

    Import-Module -Name $ModuleDir -Force

    $table = 'zdt_demo_orders'
    $newName = 'zdt_demo_customer_orders'
    $setup = "DROP TABLE IF EXISTS public.$newName CASCADE; DROP TABLE IF EXISTS public.$table CASCADE; " +
        "CREATE TABLE public.$table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer text NOT NULL); " +
        "INSERT INTO public.$table (customer) SELECT 'customer ' || g FROM generate_series(1, 1000) AS g;"
    Invoke-Native psql @($connection, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', $setup)

    Write-Host "`n1. What would the rename run?" -ForegroundColor Green
    New-TableRename -ConnectionString $connection -Table $table -NewName $newName -WhatIf

    Write-Host "`n2. Expand: rename the table, keep the old name working" -ForegroundColor Green
    $migration = New-TableRename -ConnectionString $connection -Table $table -NewName $newName -Verbose
    $migration | Format-List

    Write-Host "`n3. The old name still works" -ForegroundColor Green
    Invoke-Native psql @($connection, '-X', '-v', 'ON_ERROR_STOP=1', '-c',
        "INSERT INTO public.$table (customer) VALUES ('written through the old name'); SELECT count(*) FROM public.$newName;")

    Write-Host "`n4. The ledger" -ForegroundColor Green
    Get-Migration -ConnectionString $connection -Id $migration.Id -IncludeEvents |
        Select-Object -ExpandProperty Events |
        Format-Table

    Write-Host "`n5. Contract: drop the old name" -ForegroundColor Green
    $migration | Complete-Contract -Confirm:$false -Verbose | Format-Table

    Invoke-Native psql @($connection, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', "DROP TABLE IF EXISTS public.$newName CASCADE;")
}

$KnownTasks = 'Build', 'Test', 'Package', 'Demo'
$Task = @($Task | ForEach-Object { $_ -split '[,\s]+' } | Where-Object { $_ })
$unknown = @($Task | Where-Object { $_ -notin $KnownTasks })
if ($unknown) {
    throw "Unknown task(s): $($unknown -join ', '). Known tasks: $($KnownTasks -join ', ')."
}

foreach ($name in $Task) {
    switch ($name) {
        'Build' { Invoke-BuildTask }
        'Test' { Invoke-TestTask }
        'Package' { Invoke-PackageTask }
        'Demo' { Invoke-DemoTask }
    }
}
