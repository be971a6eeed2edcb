# Pester 5. The scripts of examples/ run as their users run them: `pwsh -NonInteractive -File`,
# the connection in PG* environment variables (the password in PGPASSWORD, as the pipeline maps
# its secret), against the test database. What a pipeline or a scheduler sees is the exit code,
# so every test asserts it; and the password must never be in what they print.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    Import-ZdtModule
    $cs = Get-ZdtTestConnection
    $examples = Join-Path $script:ZdtRepositoryRoot 'examples'
    $pipelineScripts = Join-Path $examples 'azure-devops'
    $nightlyScript = Join-Path $examples 'nightly' 'Invoke-NightlyBackfill.ps1'

    # The test database as libpq's environment variables (PGHOST, PGPORT, PGDATABASE, PGUSER,
    # PGPASSWORD, PGSSLMODE), from the postgresql:// form of the test connection.
    function Get-ZdtPgEnvironment {
        $uri = [uri](ConvertTo-ZdtPsqlUri $cs)
        $query = @{}
        foreach ($pair in $uri.Query.TrimStart('?').Split('&', [System.StringSplitOptions]::RemoveEmptyEntries)) {
            $key, $value = $pair.Split('=', 2)
            $query[$key] = [uri]::UnescapeDataString($value)
        }
        $user, $password = $uri.UserInfo.Split(':', 2)
        $environment = @{
            PGHOST = $(if ($query['host']) { $query['host'] } else { $uri.Host.Trim('[', ']') })
            PGPORT = $(if ($uri.Port -gt 0) { "$($uri.Port)" } else { '5432' })
            PGDATABASE = [uri]::UnescapeDataString($uri.AbsolutePath.TrimStart('/'))
            PGUSER = [uri]::UnescapeDataString($user)
            PGPASSWORD = $(if ($password) { [uri]::UnescapeDataString($password) } else { $null })
            PGSSLMODE = $query['sslmode']
        }
        $environment
    }

    # Runs an example script with `pwsh -NoProfile -NonInteractive -File <script> <arguments>` in
    # a new process whose environment is this one's with $Environment applied (a $null value
    # removes the variable), from the temp directory; returns the exit code and all its output.
    function Invoke-ZdtExample {
        param([Parameter(Mandatory)] [string] $Path, [string[]] $Arguments = @(), [hashtable] $Environment = @{})

        $start = [System.Diagnostics.ProcessStartInfo]::new()
        $apphost = Join-Path $PSHOME $(if ($IsWindows) { 'pwsh.exe' } else { 'pwsh' })
        if (Test-Path -Path $apphost) { $start.FileName = $apphost }
        else { $start.FileName = 'dotnet'; $start.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
        foreach ($argument in @('-NoProfile', '-NonInteractive', '-File', $Path) + $Arguments) { $start.ArgumentList.Add($argument) }
        foreach ($entry in $Environment.GetEnumerator()) {
            if ($null -eq $entry.Value) { $null = $start.Environment.Remove($entry.Key) }
            else { $start.Environment[$entry.Key] = "$($entry.Value)" }
        }
        $start.WorkingDirectory = [System.IO.Path]::GetTempPath()
        $start.RedirectStandardOutput = $true
        $start.RedirectStandardError = $true
        $process = [System.Diagnostics.Process]::Start($start)
        try {
            $stdout = $process.StandardOutput.ReadToEndAsync()
            $stderr = $process.StandardError.ReadToEndAsync()
            if (-not $process.WaitForExit(180000)) { throw "$Path did not end within 3 minutes" }
            $process.WaitForExit()
            [pscustomobject]@{ ExitCode = $process.ExitCode; Output = $stdout.Result + $stderr.Result }
        }
        finally {
            if (-not $process.HasExited) { $process.Kill($true) }
            $process.Dispose()
        }
    }

    # The JUnit XML a pipeline script wrote: its test cases (name, failure type) in order.
    function Get-ZdtJUnitCase {
        param([Parameter(Mandatory)] [string] $Path)

        $xml = [xml](Get-Content -Path $Path -Raw)
        foreach ($case in $xml.testsuites.testsuite.testcase) {
            # Strict mode: a passed case has no <failure> element to read a property of.
            $failure = $case.SelectSingleNode('failure')
            [pscustomobject]@{
                Name = $case.GetAttribute('name')
                Failure = $(if ($failure) { $failure.GetAttribute('type') } else { $null })
                Text = $(if ($failure) { $failure.InnerText } else { $null })
            }
        }
    }

    # A window of local times of day around now, as the nightly script takes it ('HH:mm:ss').
    function Get-ZdtWindow([int] $FromHours, [int] $ToHours) {
        $now = Get-Date
        @('-WindowStart', $now.AddHours($FromHours).ToString('HH:mm:ss'), '-WindowEnd', $now.AddHours($ToHours).ToString('HH:mm:ss'))
    }

    # A YAML file as objects (mappings as PSCustomObjects, sequences as arrays), parsed by YamlDotNet:
    # the test project restores it (PackageDownload) into the NuGet package folder Pester came from.
    function ConvertFrom-ZdtYaml {
        param([Parameter(Mandatory)] [string] $Path)

        $packages = (Get-Module -Name Pester).ModuleBase | Split-Path | Split-Path | Split-Path
        $assembly = Get-ChildItem -Path (Join-Path $packages 'yamldotnet' '*' 'lib' 'net8.0' 'YamlDotNet.dll') |
            Sort-Object { [version]$_.Directory.Parent.Parent.Name } | Select-Object -Last 1
        if (-not $assembly) { throw "YamlDotNet is not in ${packages}: restore the test project (dotnet test Module.sln restores it)." }
        Add-Type -Path $assembly.FullName
        $graph = [YamlDotNet.Serialization.DeserializerBuilder]::new().Build().Deserialize([System.IO.StringReader]::new((Get-Content -Path $Path -Raw)))
        [YamlDotNet.Serialization.SerializerBuilder]::new().JsonCompatible().Build().Serialize($graph) | ConvertFrom-Json -Depth 64
    }

    $pg = Get-ZdtPgEnvironment
    $module = $script:ZdtModuleDirectory
}

Describe 'The Azure DevOps pipeline scripts (examples/azure-devops)' {
    BeforeEach {
        $table = New-ZdtTableName
        New-ZdtTestTable -Table $table -Rows 3000
        $tag = "release-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $results = Join-Path ([System.IO.Path]::GetTempPath()) "zdt-results-$([guid]::NewGuid().ToString('N'))"
        $plans = Join-Path $results 'zdt-plans'
        $expand = @('-Table', $table, '-Column', 'customer', '-NewName', 'client', '-Tag', $tag, '-ModulePath', $module, '-ResultFile', (Join-Path $results 'expand.xml'))
        $contract = @('-Tag', $tag, '-ModulePath', $module, '-ResultFile', (Join-Path $results 'contract.xml'))
        $environment = $pg.Clone()
        $environment.PGAPPNAME = "zdt-build-$($tag)"
    }

    AfterEach {
        Remove-ZdtTestTable -Table $table
        Remove-Item -Path $results -Recurse -ErrorAction SilentlyContinue
    }

    It 'expand + backfill + parity, then contract (run twice): exit code 0, the migration found by its label, the build named in the ledger, steps published as JUnit' {
        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Start-ColumnRename.ps1') -Arguments $expand -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $migration = Get-Migration -ConnectionString $cs -Tag $tag
        @($migration).Count | Should -Be 1
        "$($migration.Phase)" | Should -Be 'Verified'
        $migration.CreatedBy | Should -Match ([regex]::Escape("zdt-build-$tag"))
        $run.Output | Should -Match "##vso\[task.setvariable variable=MigrationId;isOutput=true\]$($migration.Id)"
        $cases = @(Get-ZdtJUnitCase -Path (Join-Path $results 'expand.xml'))
        $cases.Name | Should -Be @("Expand public.$table.customer -> client", "Backfill migration $($migration.Id)", "Parity of migration $($migration.Id)")
        $cases.Failure | Where-Object { $_ } | Should -BeNullOrEmpty

        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Complete-ColumnRename.ps1') -Arguments $contract -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        Get-ColumnList -Table $table | Should -Be 'id,qty,client'
        "$((Get-Migration -ConnectionString $cs -Id $migration.Id).Phase)" | Should -Be 'Completed'
        (Get-ZdtJUnitCase -Path (Join-Path $results 'contract.xml')).Name | Should -Contain "Contract migration $($migration.Id) ($table.customer -> client)"
        $run.Output | Should -Not -Match ([regex]::Escape($pg.PGPASSWORD))

        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Complete-ColumnRename.ps1') -Arguments $contract -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match "Migration $($migration.Id) \($table.customer -> client\) is already completed"
        Get-ColumnList -Table $table | Should -Be 'id,qty,client'
    }

    It 'the Expand stage writes its plans for review (expand.sql, and contract.sql once verified); the Contract stage runs the approved contract.sql, and refuses one whose SQL is not what would run' {
        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Start-ColumnRename.ps1') -Arguments ($expand + @('-PlanDirectory', $plans)) -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $migration = Get-Migration -ConnectionString $cs -Tag $tag
        $expandPlan = Get-Content -Path (Join-Path $plans 'expand.sql') -Raw
        $expandPlan | Should -Match "^-- ZeroDowntime plan: Expand RenameColumn on `"public`".`"$table`"\r?\n"
        $expandPlan | Should -Match 'ADD COLUMN "client"'
        $contractPlan = Get-Content -Path (Join-Path $plans 'contract.sql') -Raw
        $contractPlan | Should -Match "^-- ZeroDowntime plan: Contract RenameColumn on `"public`".`"$table`" \(migration $($migration.Id)\)"
        $contractPlan | Should -Match 'DROP COLUMN "customer"'
        $run.Output | Should -Match 'Contract plan for review: \d+ steps'

        # The artifact was altered (or the table changed) after the approval: refused, nothing dropped.
        $altered = Join-Path $results 'altered.sql'
        Set-Content -Path $altered -Value ($contractPlan -replace 'DROP COLUMN "customer"', 'DROP COLUMN IF EXISTS "customer"') -NoNewline
        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Complete-ColumnRename.ps1') -Arguments ($contract + @('-ApprovedPlan', $altered)) -Environment $environment
        $run.ExitCode | Should -Be 1 -Because $run.Output
        (Get-ZdtJUnitCase -Path (Join-Path $results 'contract.xml') | Where-Object Failure).Failure | Should -Be 'PlanNotApproved'
        Get-ColumnList -Table $table | Should -Be 'id,customer,qty,client'

        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Complete-ColumnRename.ps1') -Arguments ($contract + @('-ApprovedPlan', (Join-Path $plans 'contract.sql'))) -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'The SQL planned now is the approved plan'
        Get-ColumnList -Table $table | Should -Be 'id,qty,client'
    }

    It 'a retried Expand stage succeeds again: the same request returns the migration it started' {
        (Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Start-ColumnRename.ps1') -Arguments $expand -Environment $environment).ExitCode | Should -Be 0
        $migration = Get-Migration -ConnectionString $cs -Tag $tag
        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Start-ColumnRename.ps1') -Arguments $expand -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        (Get-Migration -ConnectionString $cs -Tag $tag).Id | Should -Be $migration.Id
        (Get-ZdtJUnitCase -Path (Join-Path $results 'expand.xml')).Name | Should -Be "Expand public.$table.customer -> client"
    }

    It 'a contract before the backfill is refused: exit code 1, PhaseOutOfOrder in the output and in the JUnit failure, the old column kept' {
        $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Tag $tag -Confirm:$false
        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Complete-ColumnRename.ps1') -Arguments $contract -Environment $environment
        $run.ExitCode | Should -Be 1 -Because $run.Output
        $run.Output | Should -Match 'PhaseOutOfOrder'
        $failed = @(Get-ZdtJUnitCase -Path (Join-Path $results 'contract.xml') | Where-Object Failure)
        $failed.Count | Should -Be 1
        $failed[0].Failure | Should -Be 'PhaseOutOfOrder'
        $failed[0].Text | Should -Match 'Recommended action: \S'
        "$((Get-Migration -ConnectionString $cs -Id $migration.Id).Phase)" | Should -Be 'Expanded'
        Get-ColumnList -Table $table | Should -Be 'id,customer,qty,client'
    }

    It 'a contract with no migration of that label: exit code 1 and says so' {
        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Complete-ColumnRename.ps1') -Arguments $contract -Environment $environment
        $run.ExitCode | Should -Be 1
        $run.Output | Should -Match "No migration is labelled '$tag'"
        (Get-ZdtJUnitCase -Path (Join-Path $results 'contract.xml')).Failure | Should -Be 'NoMigrationWithTag'
    }

    It 'a lock held by another session past -LockRetryTimeout: exit code 1, LockRetryTimeoutExceeded naming the blocker, nothing changed' {
        $holderName = "zdt-holder-$($tag)"
        $holderUri = (ConvertTo-ZdtPsqlUri $cs)
        $holderUri += $(if ($holderUri.Contains('?')) { '&' } else { '?' }) + "application_name=$holderName"
        $holder = Start-ThreadJob -ScriptBlock {
            param($uri, $table)
            & psql $uri -X -q -c "BEGIN; LOCK TABLE public.$table IN ACCESS SHARE MODE; SELECT pg_sleep(60); COMMIT;" 2>&1 | Out-Null
        } -ArgumentList $holderUri, $table
        try {
            $deadline = (Get-Date).AddSeconds(30)
            while (-not (Invoke-Psql "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '$holderName' AND l.relation = 'public.$table'::regclass AND l.granted;")) {
                (Get-Date) | Should -BeLessThan $deadline
                Start-Sleep -Milliseconds 100
            }
            $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts 'Start-ColumnRename.ps1') -Arguments ($expand + @('-LockRetryTimeout', '2s')) -Environment $environment
            $run.ExitCode | Should -Be 1 -Because $run.Output
            $run.Output | Should -Match 'LockRetryTimeoutExceeded'
            $run.Output | Should -Match ([regex]::Escape($holderName))
            (Get-ZdtJUnitCase -Path (Join-Path $results 'expand.xml')).Failure | Should -Be 'LockRetryTimeoutExceeded'
            Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
        }
        finally {
            Invoke-Psql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$holderName';" | Out-Null
            $holder | Wait-Job | Remove-Job
        }
    }

    It 'a bad connection (<Case>) to <Script>: exit code 1, <ErrorId>, and the password is nowhere in the output' -TestCases @(
        @{ Case = 'wrong password'; Script = 'Start-ColumnRename.ps1'; ErrorId = 'AuthenticationFailed'; Change = { param($e) $e.PGPASSWORD = 'Wrong-Pa55word-' + [guid]::NewGuid().ToString('N') } }
        @{ Case = 'nothing listening on the port'; Script = 'Complete-ColumnRename.ps1'; ErrorId = 'ConnectionFailed'; Change = {
                param($e)
                $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
                $listener.Start(); $e.PGPORT = "$($listener.LocalEndpoint.Port)"; $e.PGHOST = '127.0.0.1'; $listener.Stop()
            }
        }
    ) {
        & $Change $environment
        $arguments = if ($Script -like 'Start*') { $expand } else { $contract }
        $run = Invoke-ZdtExample -Path (Join-Path $pipelineScripts $Script) -Arguments $arguments -Environment $environment
        $run.ExitCode | Should -Be 1 -Because $run.Output
        $run.Output | Should -Match "failed \($ErrorId\)"
        $run.Output | Should -Not -Match ([regex]::Escape($environment.PGPASSWORD))
        $run.Output | Should -Not -Match ([regex]::Escape($pg.PGPASSWORD))
        Get-ColumnList -Table $table | Should -Be 'id,customer,qty'
    }
}

Describe 'The nightly backfill script (examples/nightly)' {
    BeforeEach {
        $table = New-ZdtTableName
        New-ZdtTestTable -Table $table -Rows 3000
        Invoke-Psql "ANALYZE public.$table;" | Out-Null
        $tag = "nightly-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $migration = New-ColumnRename -ConnectionString $cs -Table $table -Column customer -NewName client -Tag $tag -Confirm:$false
        $common = @('-Tag', $tag, '-ModulePath', $module)
        $environment = $pg.Clone()
        $environment.PGAPPNAME = 'zdt-nightly'
    }

    AfterEach {
        Remove-ZdtTestTable -Table $table
    }

    It 'stops at the time box with the checkpoint kept (exit code 0), continues the next night to Verified, then has nothing to do' {
        $run = Invoke-ZdtExample -Path $nightlyScript -Arguments ($common + (Get-ZdtWindow -1 1) + @('-MaxDuration', '1s', '-BatchSize', '10', '-Delay', '20ms')) -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'the next night continues'
        $stopped = Get-Migration -ConnectionString $cs -Id $migration.Id
        "$($stopped.Phase)" | Should -Be 'Backfilling'
        $stopped.RowsBackfilled | Should -BeGreaterThan 0
        $stopped.RowsBackfilled | Should -BeLessThan 3000
        $stopped.Backfill.Reason | Should -Match 'MaxDuration'
        [long](Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS NOT NULL;") | Should -Be $stopped.RowsBackfilled

        $run = Invoke-ZdtExample -Path $nightlyScript -Arguments ($common + (Get-ZdtWindow -1 1)) -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'backfilled and in parity \(3000 rows\)'
        "$((Get-Migration -ConnectionString $cs -Id $migration.Id).Phase)" | Should -Be 'Verified'
        Invoke-Psql "SELECT count(*) FROM public.$table WHERE client IS DISTINCT FROM customer;" | Should -Be '0'

        $run = Invoke-ZdtExample -Path $nightlyScript -Arguments ($common + (Get-ZdtWindow -1 1)) -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'no migration left to backfill'
    }

    It 'stops at the end of the window (-StopAt), whatever the time box' {
        # -WindowEnd is a time of day: a window that ends 60 s from now (time enough for pwsh to
        # start on a loaded machine), with batches slow enough (300 of them, 1 s apart) to still
        # be running then.
        $now = Get-Date
        $window = @('-WindowStart', $now.AddHours(-1).ToString('HH:mm:ss'), '-WindowEnd', $now.AddSeconds(60).ToString('HH:mm:ss'))
        $run = Invoke-ZdtExample -Path $nightlyScript -Arguments ($common + $window + @('-MaxDuration', '1h', '-BatchSize', '10', '-Delay', '1s')) -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Not -Match 'outside the maintenance window' -Because 'pwsh must start within the 60 s'
        $stopped = Get-Migration -ConnectionString $cs -Id $migration.Id
        # Before its first batch when pwsh took most of the minute to start: the stop is the point.
        "$($stopped.Phase)" | Should -BeIn 'Expanded', 'Backfilling'
        $stopped.RowsBackfilled | Should -BeLessThan 3000
        $stopped.Backfill.Reason | Should -Match 'StopAt'
        $run.Output | Should -Match 'the next night continues'
    }

    It 'does nothing outside its window (exit code 0)' {
        $run = Invoke-ZdtExample -Path $nightlyScript -Arguments ($common + (Get-ZdtWindow 1 2)) -Environment $environment
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'outside the maintenance window'
        (Get-Migration -ConnectionString $cs -Id $migration.Id).RowsBackfilled | Should -Be 0
    }

    It 'exits 1 when it cannot log in (wrong password), without the password in its output' {
        $environment.PGPASSWORD = 'Wrong-Pa55word-' + [guid]::NewGuid().ToString('N')
        $run = Invoke-ZdtExample -Path $nightlyScript -Arguments ($common + (Get-ZdtWindow -1 1)) -Environment $environment
        $run.ExitCode | Should -Be 1 -Because $run.Output
        $run.Output | Should -Match 'Password authentication failed'
        $run.Output | Should -Not -Match ([regex]::Escape($environment.PGPASSWORD))
    }
}

Describe 'The example files hang together' {
    It 'azure-pipelines.yml parses as YAML, has the stages Expand, Deploy, Contract, and every script it names exists' {
        $yamlPath = Join-Path $examples 'azure-devops' 'azure-pipelines.yml'
        $document = ConvertFrom-ZdtYaml -Path $yamlPath
        $document.stages.stage | Should -Be @('Expand', 'Deploy', 'Contract')
        $document.stages[2].jobs[0].environment | Should -Not -BeNullOrEmpty -Because 'the contract waits for the approval of an environment'
        # Strict mode: a job has either steps or a deployment strategy, a step inputs or not.
        $member = { param($object, $name) if ($null -ne $object -and $object.PSObject.Properties[$name]) { $object.$name } }
        $steps = @($document.stages.jobs | ForEach-Object {
                & $member $_ 'steps'
                & $member (& $member (& $member (& $member $_ 'strategy') 'runOnce') 'deploy') 'steps'
            } | Where-Object { $_ })
        $paths = @($steps | ForEach-Object { & $member (& $member $_ 'inputs') 'filePath' } | Where-Object { $_ })
        $paths | Should -Be @('examples/azure-devops/Start-ColumnRename.ps1', 'examples/azure-devops/Complete-ColumnRename.ps1')
        foreach ($path in $paths) { Join-Path $script:ZdtRepositoryRoot $path | Should -Exist }
        foreach ($step in $steps | Where-Object { & $member (& $member $_ 'inputs') 'filePath' }) {
            $step.env.PGPASSWORD | Should -Be '$(PgPassword)' -Because 'the secret reaches the script only as PGPASSWORD'
            $step.env.PGAPPNAME | Should -Match '\$\(Build\.BuildId\)'
            $step.inputs.arguments | Should -Match '-Tag \$\(MigrationTag\)'
        }
        @($steps | Where-Object { (& $member $_ 'task') -eq 'PublishTestResults@2' }).Count | Should -Be 2
        # The plans: published by the Expand stage, downloaded by the Contract stage, whose script runs only the approved contract.sql.
        $scriptSteps = @($steps | Where-Object { & $member (& $member $_ 'inputs') 'filePath' })
        $published = @($steps | Where-Object { & $member $_ 'publish' })
        $published.artifact | Should -Be 'zdt-plans'
        $scriptSteps[0].inputs.arguments | Should -Match ([regex]::Escape("-PlanDirectory $($published[0].publish)"))
        @($steps | Where-Object { (& $member $_ 'download') -eq 'current' }).artifact | Should -Be 'zdt-plans'
        $scriptSteps[1].inputs.arguments | Should -Match '-ApprovedPlan \$\(Pipeline\.Workspace\)/zdt-plans/contract\.sql'
    }

    It 'the systemd service, the crontab line and the Task Scheduler script run Invoke-NightlyBackfill.ps1 with parameters it has' {
        $nightly = Join-Path $examples 'nightly'
        $parameters = (Get-Command -Name $nightlyScript).Parameters.Keys
        $lines = @(
            (Get-Content (Join-Path $nightly 'zdt-nightly-backfill.service') | Where-Object { $_ -match '^ExecStart=' })
            (Get-Content (Join-Path $nightly 'crontab') | Where-Object { $_ -match '^\d' })
        )
        $lines.Count | Should -Be 2
        foreach ($line in $lines) {
            $line | Should -Match '-NonInteractive -File \S+/Invoke-NightlyBackfill\.ps1 '
            foreach ($name in [regex]::Matches(($line -split 'Invoke-NightlyBackfill\.ps1', 2)[1], '(?<=\s)-(\w+)').Value) {
                $parameters | Should -Contain $name.TrimStart('-')
            }
        }
        Get-Content (Join-Path $nightly 'zdt-nightly-backfill.timer') | Should -Contain 'Unit=zdt-nightly-backfill.service'

        $register = Join-Path $nightly 'Register-NightlyBackfill.ps1'
        $tokens = $errors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseFile($register, [ref] $tokens, [ref] $errors)
        $errors | Should -BeNullOrEmpty
        $ast.FindAll({ param($node) $node -is [System.Management.Automation.Language.CommandAst] }, $true).GetCommandName() | Should -Contain 'Register-ScheduledTask'
    }

    It 'every example script sets $ErrorActionPreference = Stop before its first command' {
        $scripts = Get-ChildItem -Path $examples -Recurse -Filter '*.ps1' | Where-Object Name -ne 'PipelineSteps.ps1'
        $scripts.Count | Should -BeGreaterOrEqual 4
        foreach ($file in $scripts) {
            $tokens = $errors = $null
            $ast = [System.Management.Automation.Language.Parser]::ParseFile($file.FullName, [ref] $tokens, [ref] $errors)
            $errors | Should -BeNullOrEmpty -Because $file.Name
            "$($ast.EndBlock.Statements[0])" | Should -Be "`$ErrorActionPreference = 'Stop'" -Because $file.Name
        }
    }

    It 'Register-NightlyBackfill.ps1 off Windows stops with exit code 1 and says where to look instead' -Skip:$IsWindows {
        $run = Invoke-ZdtExample -Path (Join-Path $examples 'nightly' 'Register-NightlyBackfill.ps1') -Arguments @('-Tag', 'x', '-User', 'zdt')
        $run.ExitCode | Should -Be 1
        $run.Output | Should -Match 'zdt-nightly-backfill.timer'
    }
}

Describe 'The README for DBAs: a command name another module also defines' {
    It 'ZeroDowntime\Get-Migration reaches ours past a Get-Migration imported later, and -Prefix Zdt gives Get-ZdtMigration' {
        $run = Invoke-ZdtScriptFile -WithModule @"
`$ErrorActionPreference = 'Stop'
New-Module -Name OtherTools -ScriptBlock { function Get-Migration { 'the other module' } } | Import-Module
"plain: `$(Get-Migration)"
"qualified: `$((ZeroDowntime\Get-Migration -ConnectionString `$cs -Active | Measure-Object).GetType().Name)"
Remove-Module ZeroDowntime
Import-Module -Name '$($script:ZdtModuleDirectory)' -Prefix Zdt
"prefixed: `$((Get-Command -Module ZeroDowntime -Name Get-ZdtMigration, New-ZdtColumnRename).Count)"
"@
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'plain: the other module'
        $run.Output | Should -Match 'qualified: GenericMeasureInfo'
        $run.Output | Should -Match 'prefixed: 2'
    }
}
