namespace ZeroDowntime.Bench.Workload;

/// <summary>
/// One version of the simulated application: which table name and which address column its SQL
/// uses. v1 knows "address", v2 "billing_address"; a rollout runs both side by side.
/// </summary>
/// <param name="Name">Shown in output and in pg_stat_activity's application_name; also makes inserted codes unique.</param>
/// <param name="Table">The quoted, qualified table (or compatibility view) name.</param>
/// <param name="AddressColumn">The quoted column the version reads and writes.</param>
public sealed record AppVersionSpec(string Name, string Table, string AddressColumn)
{
    public string ReadSql => $"SELECT id, code, {AddressColumn}, qty FROM {Table} WHERE id = $1";

    public string UpdateSql => $"UPDATE {Table} SET {AddressColumn} = $1, qty = qty + 1 WHERE id = $2";

    public string InsertSql => $"INSERT INTO {Table} (code, {AddressColumn}, qty) VALUES ($1, $2, $3)";

    public override string ToString() => $"{Name} ({AddressColumn} of {Table})";
}

/// <summary>The share of each statement kind, in percent (they need not add up to 100: they are weights).</summary>
public sealed record OperationMix(int Reads, int Updates, int Inserts)
{
    /// <summary>A typical OLTP mix: mostly point reads, some updates, a few inserts.</summary>
    public static OperationMix Default { get; } = new(70, 20, 10);

    /// <summary>Writes only, to measure what a trigger adds to each write.</summary>
    public static OperationMix WritesOnly { get; } = new(0, 70, 30);

    public override string ToString() => $"{Reads}% reads / {Updates}% updates / {Inserts}% inserts";
}

/// <summary>How hard the simulated application drives the database.</summary>
public sealed record WorkloadOptions
{
    /// <summary>Concurrent client connections, each running one statement at a time.</summary>
    public int Connections { get; init; } = 4;

    /// <summary>
    /// Statements per second over all connections (open loop: a real application's request rate
    /// does not drop because the database is busy), or null to run every connection flat out
    /// (closed loop), which measures capacity instead.
    /// </summary>
    public double? Rate { get; init; } = 800;

    public OperationMix Mix { get; init; } = OperationMix.Default;

    /// <summary>Reads and updates pick ids uniformly in [1, IdRange]: rows that existed at the start.</summary>
    public long IdRange { get; init; } = 1;

    /// <summary>How far an open-loop client may fall behind its schedule before it skips ahead (a stall would otherwise be followed by a burst without end).</summary>
    public TimeSpan MaxBacklog { get; init; } = TimeSpan.FromSeconds(1);

    public int Seed { get; init; } = 42;

    public string Describe() => Rate is { } rate
        ? $"{Connections} connections, {rate:N0} statements/s, {Mix}"
        : $"{Connections} connections flat out, {Mix}";
}
