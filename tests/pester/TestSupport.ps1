# Shared by the Pester files that need a database: dot-source it in BeforeDiscovery (for the skip
# decision) and in BeforeAll (for the helpers). The tests use psql to create and inspect their
# tables, because the module's own Npgsql lives in its isolated load context.

# Why the database tests cannot run here, or $null when they can.
function Get-ZdtTestSkipReason {
    if (-not $env:ZDT_TEST_CONNECTION) {
        return 'ZDT_TEST_CONNECTION is not set (a postgresql:// URI of a test database).'
    }
    if ($env:ZDT_TEST_CONNECTION -notmatch '^postgres(ql)?://') {
        return 'ZDT_TEST_CONNECTION must be a postgresql:// URI, so that psql can use it too.'
    }
    if (-not (Get-Command -Name psql -ErrorAction SilentlyContinue)) {
        return 'psql is not on PATH; the tests use it to create and inspect their tables.'
    }
    return $null
}

# Runs SQL through psql and returns its unaligned, header-less output lines.
function Invoke-Psql {
    param([Parameter(Mandatory)] [string] $Sql)

    $output = & psql $env:ZDT_TEST_CONNECTION -X -q -t -A -v ON_ERROR_STOP=1 -c $Sql
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
