using ZeroDowntime.Engine.Connections;

namespace ZeroDowntime.Engine;

/// <summary>
/// What Test-ColumnParity found: how many rows have old IS DISTINCT FROM new. Carries Id and
/// Connection so it pipes into Complete-Contract like a migration does.
/// </summary>
public sealed class ParityResult
{
    /// <summary>The migration's id (named Id so Complete-Contract binds it from the pipeline).</summary>
    public long Id { get; init; }

    public long MigrationId => Id;

    public string Schema { get; init; } = "";

    public string Table { get; init; } = "";

    public string Column { get; init; } = "";

    public string NewName { get; init; } = "";

    public long RowsChecked { get; init; }

    public long Mismatches { get; init; }

    /// <summary>What a mismatching row is, as the end of a sentence that starts with "N rows of the table".</summary>
    public string MismatchMeaning { get; init; } = "";

    /// <summary>Keys (as text) of up to ten mismatching rows, to look at by hand.</summary>
    public IReadOnlyList<string> SampleKeys { get; init; } = Array.Empty<string>();

    public bool InParity => Mismatches == 0;

    public DateTimeOffset CheckedAt { get; init; }

    public TimeSpan Duration { get; init; }

    public ConnectionTarget? Connection { get; init; }

    public override string ToString() => $"Migration {Id}: {Mismatches:N0} mismatches in {RowsChecked:N0} rows ({(InParity ? "in parity" : "NOT in parity")})";
}
