# The module as built by 'dotnet build Module.sln' (out/ZeroDowntime). Needs no database.
# Pester 5: run with  Invoke-Pester ./tests/pester/Module.Tests.ps1 -Output Detailed

BeforeDiscovery {
    $manifest = Import-PowerShellDataFile -Path (Join-Path $PSScriptRoot '..' '..' 'ZeroDowntime.psd1')
    $cmdlets = @($manifest.CmdletsToExport | ForEach-Object { @{ Name = $_ } })
    # Get- and Test- cmdlets change no schema, so they have no -WhatIf (read-only verbs, as in ModuleSurfaceTests).
    $stateChangingCmdlets = @($cmdlets | Where-Object { $_.Name -notmatch '^(Get|Test)-' })
}

BeforeAll {
    $moduleDir = Join-Path $PSScriptRoot '..' '..' 'out' 'ZeroDowntime'
    $manifestPath = Join-Path $moduleDir 'ZeroDowntime.psd1'
    Import-Module -Name $moduleDir -Force
}

Describe 'The ZeroDowntime module' {
    It 'has a valid manifest' {
        { Test-ModuleManifest -Path $manifestPath -ErrorAction Stop } | Should -Not -Throw
    }

    It 'imports' {
        $module = Import-Module -Name $moduleDir -Force -PassThru
        $module.Name | Should -Be 'ZeroDowntime'
    }

    It 'exports exactly the cmdlets its manifest lists' {
        $exported = @((Get-Command -Module ZeroDowntime).Name | Sort-Object)
        $listed = @((Import-PowerShellDataFile -Path $manifestPath).CmdletsToExport | Sort-Object)
        $exported | Should -Be $listed
    }

    It '<Name> has help with a description' -TestCases $cmdlets {
        (Get-Help -Name $Name -Full).Description | Should -Not -BeNullOrEmpty
    }

    It '<Name> has help with at least one example' -TestCases $cmdlets {
        @((Get-Help -Name $Name -Full).Examples.Example).Count | Should -BeGreaterThan 0
    }

    It '<Name> supports -WhatIf and -Confirm' -TestCases $stateChangingCmdlets {
        $parameters = (Get-Command -Name $Name).Parameters
        $parameters.ContainsKey('WhatIf') | Should -BeTrue
        $parameters.ContainsKey('Confirm') | Should -BeTrue
    }
}
