<#
.SYNOPSIS
    Lists or runs the Pester tests in tests/pester, for the xunit host (PesterTests) and build.ps1.

.DESCRIPTION
    -Discover writes the tests that exist (without running them) to -OutFile as JSON; otherwise
    every test runs and -OutFile receives each test's result, and -TestResultPath (optional) the
    NUnit XML that Azure DevOps publishes. Each test is named by a key, '<file>: <block>.<test>'
    with '<Name>'-style placeholders filled from the test's data, the same in both modes, so the
    host can match a result to the test it listed. A file that cannot even be discovered is
    listed as '<file>: (file)' with its error, so it fails instead of vanishing.

    The database tests read ZDT_TEST_CONNECTION (TestSupport.ps1); the host sets it.

.EXAMPLE
    dotnet pwsh -NoProfile -File tests/pester/Invoke-ZdtPester.ps1 -PesterModule ~/.nuget/packages/pester/5.7.1/tools/Pester.psd1 -OutFile results.json
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $PesterModule,
    [Parameter(Mandatory)] [string] $OutFile,
    [string] $Path = $PSScriptRoot,
    [switch] $Discover,
    [string] $TestResultPath
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

Import-Module -Name $PesterModule -Force

# '<file>: <Describe>.<Context>.<It>' with <placeholders> filled from the data of the test and of
# the blocks around it (Pester fills them only when the test runs, so discovery needs this too).
function Get-TestKey {
    param([Parameter(Mandatory)] $Test)

    $data = @{}
    $blocks = [System.Collections.Generic.List[object]]::new()
    $block = $Test.Block
    while ($null -ne $block -and -not $block.IsRoot) {
        $blocks.Insert(0, $block)
        $block = $block.Parent
    }
    foreach ($item in @($blocks) + @($Test)) {
        if ($item.Data -is [System.Collections.IDictionary]) {
            foreach ($entry in $item.Data.GetEnumerator()) { $data[[string]$entry.Key] = $entry.Value }
        }
    }
    $names = @($blocks | ForEach-Object { $_.Name }) + @($Test.Name)
    $expanded = foreach ($name in $names) {
        [regex]::Replace($name, '<([\w.]+)>', {
                param($match)
                $value = $data
                foreach ($part in $match.Groups[1].Value.Split('.')) {
                    if ($value -is [System.Collections.IDictionary] -and $value.Contains($part)) { $value = $value[$part] }
                    elseif ($null -ne $value -and $value.PSObject.Properties[$part]) { $value = $value.$part }
                    else { return $match.Value }
                }
                "$value"
            })
    }
    '{0}: {1}' -f (Split-Path -Leaf $Test.ScriptBlock.File), ($expanded -join '.')
}

# The error of a test, or of the block setup that kept it from running, as one string.
function Get-FailureText {
    param([Parameter(Mandatory)] $Item)

    $texts = foreach ($errorRecord in @($Item.ErrorRecord)) {
        if ($null -eq $errorRecord) { continue }
        $text = "$($errorRecord.DisplayErrorMessage)"
        if (-not $text) { $text = "$errorRecord" }
        $stack = "$($errorRecord.DisplayStackTrace)"
        if ($stack) { $text += [Environment]::NewLine + $stack }
        $text
    }
    $texts -join [Environment]::NewLine
}

$configuration = New-PesterConfiguration
$configuration.Run.Path = $Path
$configuration.Run.PassThru = $true
$configuration.Run.SkipRun = [bool] $Discover
$configuration.Output.Verbosity = if ($Discover) { 'None' } else { 'Detailed' }
if (-not $Discover -and $TestResultPath) {
    $configuration.TestResult.Enabled = $true
    $configuration.TestResult.OutputFormat = 'NUnitXml'
    $configuration.TestResult.OutputPath = $TestResultPath
}

$run = Invoke-Pester -Configuration $configuration

$seen = @{}
$entries = [System.Collections.Generic.List[object]]::new()
foreach ($test in $run.Tests) {
    $key = Get-TestKey -Test $test
    # Two tests with the same name in one block: keep both, in discovery order.
    $seen[$key] = 1 + [int] $seen[$key]
    if ($seen[$key] -gt 1) { $key = "$key #$($seen[$key])" }

    $message = Get-FailureText -Item $test
    if ($test.Result -ne 'Passed' -and -not $message) {
        # A failed BeforeAll fails the block; its tests only say they did not run.
        $block = $test.Block
        while ($null -ne $block -and -not $message) {
            $message = Get-FailureText -Item $block
            $block = $block.Parent
        }
        if ($test.Result -eq 'Skipped' -and -not $message) {
            $message = 'Skipped (a -Skip condition or Set-ItResult -Skipped).'
        }
    }
    $entries.Add([ordered]@{
            Key = $key
            Result = "$($test.Result)"
            Message = $message
            DurationMs = [int] $test.Duration.TotalMilliseconds
        })
}

# A file that failed as a whole (a syntax error, a throwing BeforeDiscovery) has no tests to list.
foreach ($container in $run.Containers) {
    if ($container.Result -eq 'Failed' -and -not @($container.Blocks | Where-Object { $_.Tests.Count -gt 0 })) {
        $entries.Add([ordered]@{
                Key = '{0}: (file)' -f (Split-Path -Leaf "$($container.Item)")
                Result = 'Failed'
                Message = Get-FailureText -Item $container
                DurationMs = 0
            })
    }
}

ConvertTo-Json -InputObject @($entries) -Depth 4 | Set-Content -Path $OutFile -Encoding utf8
if (-not $Discover) {
    Write-Host ('Pester: {0} passed, {1} failed, {2} skipped, {3} not run' -f $run.PassedCount, $run.FailedCount, $run.SkippedCount, $run.NotRunCount)
}
