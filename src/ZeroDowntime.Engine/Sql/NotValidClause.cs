namespace ZeroDowntime.Engine.Sql;

/// <summary>
/// The trailing <c>NOT VALID</c> of a constraint definition as <c>pg_get_constraintdef</c> writes
/// it. A copy is added NOT VALID and validated in a step of its own (a plain table); a partitioned
/// level cannot take NOT VALID for every kind, so its planner wants the bare definition.
/// </summary>
internal static class NotValidClause
{
    private const string Suffix = " NOT VALID";

    /// <summary>The definition ending in NOT VALID (once).</summary>
    public static string Add(string definition)
        => definition.EndsWith(Suffix, StringComparison.Ordinal) ? definition : definition + Suffix;

    /// <summary>The definition without its trailing NOT VALID.</summary>
    public static string Strip(string definition)
        => definition.EndsWith(Suffix, StringComparison.Ordinal) ? definition[..^Suffix.Length] : definition;
}
