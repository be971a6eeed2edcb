# Shared by the Pester files: dot-source it in BeforeAll. The database tests use psql to create
# and inspect their tables, because the module's own Npgsql lives in its isolated load context.
#
# ZDT_TEST_CONNECTION names the test database, in either form the module accepts: an Npgsql
# keyword string ('Host=...;Username=...') or a postgresql:// URI. The cmdlets get it as given;
# psql gets it as a URI. `dotnet test Module.sln` (PesterTests) sets it to a fresh database of
# the run's server; without it the database tests fail (none is skipped for want of a database).

$script:ZdtRepositoryRoot = (Resolve-Path (Join-Path $PSScriptRoot '..' '..')).Path
$script:ZdtModuleDirectory = Join-Path $script:ZdtRepositoryRoot 'out' 'ZeroDowntime'

# The test database as the cmdlets take it (either form).
function Get-ZdtTestConnection {
    if (-not $env:ZDT_TEST_CONNECTION) {
        throw 'ZDT_TEST_CONNECTION is not set: these tests need a PostgreSQL database (a keyword connection string or a postgresql:// URI). `dotnet test Module.sln -c Release` sets it for them.'
    }
    $env:ZDT_TEST_CONNECTION
}

# An Npgsql keyword connection string as a postgresql:// URI (what psql accepts); a URI as is.
function ConvertTo-ZdtPsqlUri {
    param([Parameter(Mandatory)] [string] $Connection)

    if ($Connection -match '^\s*postgres(ql)?://') {
        return $Connection.Trim()
    }

    # DbConnectionStringBuilder reads the keyword syntax (quoted values with ; or = in them) as Npgsql does.
    # (Its keys are PowerShell-adapted as properties, hence the explicit accessor methods.)
    $parsed = [System.Data.Common.DbConnectionStringBuilder]::new()
    $parsed.set_ConnectionString($Connection)
    $settings = @{}
    foreach ($key in $parsed.get_Keys()) {
        $value = $null
        $null = $parsed.TryGetValue($key, [ref] $value)
        $settings[($key.ToLowerInvariant() -replace '\s', '')] = "$value"
    }
    function Get-Setting([string[]] $Names) {
        foreach ($name in $Names) { if ($settings.ContainsKey($name)) { return $settings[$name] } }
        $null
    }

    $escape = { param($text) [uri]::EscapeDataString($text) }
    $hostName = Get-Setting 'host', 'server'
    $port = Get-Setting 'port'
    $user = Get-Setting 'username', 'userid', 'user'
    $password = Get-Setting 'password', 'pwd'
    $database = Get-Setting 'database', 'db'
    $sslMode = Get-Setting 'sslmode'

    $uri = 'postgresql://'
    if ($user) {
        $uri += & $escape $user
        if ($password) { $uri += ':' + (& $escape $password) }
        $uri += '@'
    }
    $query = @()
    if ($hostName -and $hostName.StartsWith('/')) { $query += 'host=' + (& $escape $hostName) }
    elseif ($hostName) { $uri += $(if ($hostName.Contains(':')) { "[$hostName]" } else { $hostName }) }
    if ($port) { $uri += ":$port" }
    $uri += '/'
    if ($database) { $uri += & $escape $database }
    if ($sslMode) {
        $query += 'sslmode=' + ($sslMode.ToLowerInvariant() -replace '^verifyca$', 'verify-ca' -replace '^verifyfull$', 'verify-full')
    }
    if ($query) { $uri += '?' + ($query -join '&') }
    $uri
}

# Imports the module as built by 'dotnet build Module.sln' (out/ZeroDowntime).
function Import-ZdtModule {
    Import-Module -Name $script:ZdtModuleDirectory -Force
}

# Runs SQL through psql and returns its unaligned, header-less output lines.
function Invoke-Psql {
    param([Parameter(Mandatory)] [string] $Sql)

    $uri = ConvertTo-ZdtPsqlUri (Get-ZdtTestConnection)
    $output = & psql $uri -X -q -t -A -v ON_ERROR_STOP=1 -c $Sql
    if ($LASTEXITCODE -ne 0) {
        throw "psql failed with exit code $LASTEXITCODE running: $Sql"
    }
    $output
}

# The columns of public.$Table in order, joined with commas, e.g. 'id,address'.
function Get-ColumnList {
    param([Parameter(Mandatory)] [string] $Table)

    Invoke-Psql "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'public.$Table'::regclass AND attnum > 0 AND NOT attisdropped;"
}

# A fresh table name for one test, e.g. 'zdt_p_orders_1a2b3c4d5e'.
function New-ZdtTableName {
    param([string] $Prefix = 'zdt_p')

    '{0}_{1}' -f $Prefix, [guid]::NewGuid().ToString('N').Substring(0, 10)
}

# Creates public.$Table with an identity key and $Rows rows: id, customer (text), qty (int).
function New-ZdtTestTable {
    param([Parameter(Mandatory)] [string] $Table, [int] $Rows = 50)

    Invoke-Psql "CREATE TABLE public.$Table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer text, qty int NOT NULL DEFAULT 1); INSERT INTO public.$Table (customer, qty) SELECT 'c' || g, g FROM generate_series(1, $Rows) g;"
}

# Undoes whatever migration a test left active on the table, then drops it.
function Remove-ZdtTestTable {
    param([Parameter(Mandatory)] [string] $Table, [string[]] $AlsoDrop = @())

    Get-Migration -ConnectionString (Get-ZdtTestConnection) -Table $Table -Active -ErrorAction SilentlyContinue |
        Undo-Migration -Confirm:$false -ErrorAction SilentlyContinue
    foreach ($name in @($Table) + $AlsoDrop) {
        # A view or a table, whichever the name is now (a rename may have left either).
        Invoke-Psql @"
DO `$`$ DECLARE kind "char"; BEGIN
  SELECT relkind INTO kind FROM pg_class WHERE oid = to_regclass('public.$name');
  IF kind = 'v' THEN EXECUTE 'DROP VIEW public.$name CASCADE';
  ELSIF kind IS NOT NULL THEN EXECUTE 'DROP TABLE public.$name CASCADE';
  END IF;
END `$`$;
"@ | Out-Null
    }
}

# One line per parameter of a cmdlet (common parameters left out), to pin its surface, e.g.
# 'Table [String] Mandatory Position=0 ByPropertyName'.
function Get-ZdtParameterSummary {
    param([Parameter(Mandatory)] [string] $Name)

    $common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
    $command = Get-Command -Name $Name -Module ZeroDowntime
    foreach ($set in $command.ParameterSets) {
        foreach ($parameter in $set.Parameters | Where-Object { $_.Name -notin $common }) {
            $line = '{0} [{1}]' -f $parameter.Name, $parameter.ParameterType.Name
            if ($parameter.IsMandatory) { $line += ' Mandatory' }
            if ($parameter.Position -ge 0) { $line += " Position=$($parameter.Position)" }
            if ($parameter.ValueFromPipeline) { $line += ' ByValue' }
            if ($parameter.ValueFromPipelineByPropertyName) { $line += ' ByPropertyName' }
            $line
        }
    }
}

# The values a parameter's ValidateSet allows, or nothing.
function Get-ZdtValidateSet {
    param([Parameter(Mandatory)] [string] $Name, [Parameter(Mandatory)] [string] $Parameter)

    (Get-Command -Name $Name -Module ZeroDowntime).Parameters[$Parameter].Attributes |
        Where-Object { $_ -is [System.Management.Automation.ValidateSetAttribute] } |
        ForEach-Object { $_.ValidValues }
}

# Get-Help -Full of a cmdlet: a written synopsis (not the generated syntax line), every
# parameter (WhatIf and Confirm included) described, and an example that uses the cmdlet.
function Assert-ZdtCommandHelp {
    param([Parameter(Mandatory)] [string] $Name)

    $help = Get-Help -Name $Name -Full
    "$($help.Synopsis)".Trim() | Should -Not -BeNullOrEmpty
    "$($help.Synopsis)".Trim() | Should -Not -Match "^$Name\s+\[" -Because 'a synopsis PowerShell generates from the syntax means the help file was not found'
    (@($help.Description) | ForEach-Object { $_.Text }) -join ' ' | Should -Not -BeNullOrEmpty

    $common = [System.Management.Automation.PSCmdlet]::CommonParameters + @('ErrorAction', 'WarningAction', 'InformationAction', 'ProgressAction', 'ErrorVariable', 'WarningVariable', 'InformationVariable', 'OutVariable', 'OutBuffer', 'PipelineVariable', 'UseTransaction')
    $parameters = @((Get-Command -Name $Name -Module ZeroDowntime).Parameters.Keys | Where-Object { $_ -notin $common })
    $documented = @{}
    foreach ($parameter in @($help.Parameters.Parameter)) {
        $documented[$parameter.Name] = (@($parameter.Description) | ForEach-Object { $_.Text }) -join ' '
    }
    foreach ($parameter in $parameters) {
        $documented.ContainsKey($parameter) | Should -BeTrue -Because "-$parameter must be in the help of $Name"
        $documented[$parameter] | Should -Not -BeNullOrEmpty -Because "-$parameter needs a description in the help of $Name"
    }

    $examples = @($help.Examples.Example)
    $examples.Count | Should -BeGreaterThan 0
    ($examples.Code -join "`n") | Should -Match ([regex]::Escape($Name))
}

# An error record as the module writes it: the id (ErrorId,FullCommandName), the category, the
# object it is about, and the message.
function Assert-ZdtErrorRecord {
    param(
        [Parameter(Mandatory)] [System.Management.Automation.ErrorRecord] $ErrorRecord,
        [Parameter(Mandatory)] [string] $ErrorId,
        [Parameter(Mandatory)] [System.Management.Automation.ErrorCategory] $Category,
        [Parameter(Mandatory)] [string] $Command,
        [string] $TargetObject,
        [string] $MessageLike
    )

    $ErrorRecord.FullyQualifiedErrorId | Should -BeLike "$ErrorId,ZeroDowntime.PowerShell.Commands.*"
    $ErrorRecord.CategoryInfo.Category | Should -Be $Category
    $ErrorRecord.InvocationInfo.MyCommand.Name | Should -Be $Command
    if ($PSBoundParameters.ContainsKey('TargetObject')) {
        "$($ErrorRecord.TargetObject)" | Should -Be $TargetObject
    }
    if ($MessageLike) {
        $ErrorRecord.Exception.Message | Should -BeLike $MessageLike
    }
}

# The type name PowerShell shows for an output object (the engine's types live in the module's
# own load context, so [ZeroDowntime.Engine.Migration] cannot be named in a script).
function Get-ZdtTypeName {
    param([Parameter(Mandatory, ValueFromPipeline)] $InputObject)

    process { $InputObject.PSObject.TypeNames[0] }
}

# The default table view of objects, as a user sees it (header line and rows).
function Get-ZdtTableText {
    param([Parameter(Mandatory, ValueFromPipeline)] $InputObject)

    begin { $items = [System.Collections.Generic.List[object]]::new() }
    process { $items.Add($InputObject) }
    end { ($items | Format-Table | Out-String -Width 250) }
}

# What a command writes to the progress stream, by running it in a runspace of its own (progress
# cannot be redirected): the records' activities and status lines.
function Get-ZdtProgressRecords {
    param([Parameter(Mandatory)] [string] $Script, [hashtable] $Variables = @{})

    $ps = [powershell]::Create()
    try {
        $null = $ps.AddScript("Import-Module -Name '$($script:ZdtModuleDirectory)'; `$ProgressPreference = 'Continue'").AddStatement()
        foreach ($entry in $Variables.GetEnumerator()) {
            $ps.Runspace.SessionStateProxy.SetVariable($entry.Key, $entry.Value)
        }
        $null = $ps.AddScript($Script)
        $output = $ps.Invoke()
        [pscustomobject]@{
            Output = @($output)
            Progress = @($ps.Streams.Progress)
            Errors = @($ps.Streams.Error)
        }
    }
    finally {
        $ps.Dispose()
    }
}

# What -WhatIf prints (ShouldProcess writes it to the host, which no stream redirection catches):
# runs the script block under a transcript and returns the transcript's text.
function Get-ZdtWhatIfText {
    param([Parameter(Mandatory)] [scriptblock] $ScriptBlock)

    $file = Join-Path ([System.IO.Path]::GetTempPath()) ("zdt-whatif-{0}.txt" -f [guid]::NewGuid().ToString('N'))
    Start-Transcript -Path $file -UseMinimalHeader | Out-Null
    try {
        & $ScriptBlock | Out-Null
    }
    finally {
        Stop-Transcript | Out-Null
    }
    try {
        Get-Content -Path $file -Raw
    }
    finally {
        Remove-Item -Path $file -ErrorAction SilentlyContinue
    }
}

# Runs a script in a new `pwsh -NonInteractive -File` process (the same PowerShell as this one)
# and returns its exit code and output: how a scheduled task or a pipeline step runs a script.
# -WithModule starts the script by importing the module and setting $cs to the test database.
function Invoke-ZdtScriptFile {
    param([Parameter(Mandatory)] [string] $Script, [switch] $WithModule)

    if ($WithModule) {
        $quote = { param($text) "'" + ($text -replace "'", "''") + "'" }
        $Script = "Import-Module -Name $(& $quote $script:ZdtModuleDirectory)`n`$cs = $(& $quote (Get-ZdtTestConnection))`n$Script"
    }
    $file = Join-Path ([System.IO.Path]::GetTempPath()) ("zdt-script-{0}.ps1" -f [guid]::NewGuid().ToString('N'))
    Set-Content -Path $file -Value $Script -Encoding utf8
    # From the temp directory: whatever the script writes by accident stays out of the repository.
    Push-Location -Path ([System.IO.Path]::GetTempPath())
    try {
        # The .NET tool's pwsh is pwsh.dll beside $PSHOME's apphost-less layout: start it with dotnet then.
        $apphost = Join-Path $PSHOME $(if ($IsWindows) { 'pwsh.exe' } else { 'pwsh' })
        $output = if (Test-Path -Path $apphost) {
            & $apphost -NoProfile -NonInteractive -File $file 2>&1
        }
        else {
            & dotnet (Join-Path $PSHOME 'pwsh.dll') -NoProfile -NonInteractive -File $file 2>&1
        }
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output | Out-String) }
    }
    finally {
        Pop-Location
        Remove-Item -Path $file -ErrorAction SilentlyContinue
    }
}

# Creates public.$Table partitioned by RANGE (created): ${Table}_2020, ${Table}_2021 (itself
# partitioned by LIST (region): ${Table}_2021_eu and the default ${Table}_2021_other) and the
# default ${Table}_default; $Rows rows across them. Remove-ZdtTestTable drops it with its partitions.
function New-ZdtPartitionedTestTable {
    param([Parameter(Mandatory)] [string] $Table, [int] $Rows = 200)

    Invoke-Psql @"
CREATE TABLE public.$Table (id bigint NOT NULL, created date NOT NULL, region text NOT NULL, qty int) PARTITION BY RANGE (created);
CREATE TABLE public.${Table}_2020 PARTITION OF public.$Table FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE public.${Table}_2021 PARTITION OF public.$Table FOR VALUES FROM ('2021-01-01') TO ('2022-01-01') PARTITION BY LIST (region);
CREATE TABLE public.${Table}_2021_eu PARTITION OF public.${Table}_2021 FOR VALUES IN ('eu');
CREATE TABLE public.${Table}_2021_other PARTITION OF public.${Table}_2021 DEFAULT;
CREATE TABLE public.${Table}_default PARTITION OF public.$Table DEFAULT;
INSERT INTO public.$Table SELECT g, date '2020-01-01' + (g * 5 % 1000), CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g FROM generate_series(1, $Rows) g;
"@ | Out-Null
}
