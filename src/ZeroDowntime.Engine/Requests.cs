namespace ZeroDowntime.Engine;

/// <summary>Rename a table, keeping the old name working through an updatable view until contract.</summary>
public sealed record TableRenameRequest(string Schema, string Table, string NewName);

/// <summary>Which migrations Get-Migration returns.</summary>
public sealed record MigrationQuery
{
    public long? Id { get; init; }

    public string? Schema { get; init; }

    /// <summary>Matches the table's original or new name.</summary>
    public string? Table { get; init; }

    public bool ActiveOnly { get; init; }

    public bool IncludeEvents { get; init; }
}
