namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// How a value of the old column becomes one of the new column (Up) and back (Down), as SQL
/// templates in which <see cref="Placeholder"/> stands for the source value. The sync trigger, the
/// backfill and the parity check all render the same templates, so they can never disagree about
/// what "in sync" means. A rename is the identity; a type change supplies casts (and, for a
/// conversion that can fail, functions that turn a value that does not convert into NULL).
/// </summary>
internal sealed record ColumnConversion(string Up, string Down)
{
    public const string Placeholder = "{value}";

    public static ColumnConversion Identity { get; } = new(Placeholder, Placeholder);

    public bool IsIdentity => Up == Placeholder && Down == Placeholder;

    /// <summary>
    /// Set when Up gives NULL for a non-NULL value that does not convert: such rows are out of
    /// parity (counted, and the contract refuses) although the backfill leaves them alone.
    /// </summary>
    public bool CanFail { get; init; }

    /// <summary>Functions the templates call, created with the sync trigger (before it).</summary>
    public IReadOnlyList<string> CreateStatements { get; init; } = Array.Empty<string>();

    /// <summary>Drops those functions (IF EXISTS), run after the sync trigger is gone.</summary>
    public IReadOnlyList<string> DropStatements { get; init; } = Array.Empty<string>();

    /// <summary>
    /// The old-to-new template the sync trigger uses, when it differs from <see cref="Up"/>: a type
    /// change whose user opted in fails the application's write of a value that does not convert,
    /// where the backfill and parity (Up) keep counting it.
    /// </summary>
    public string? TriggerUp { get; init; }

    /// <summary>The new column's value computed from <paramref name="oldValue"/> inside the sync trigger (SQL).</summary>
    public string ToNewInTrigger(string oldValue) => (TriggerUp ?? Up).Replace(Placeholder, oldValue, StringComparison.Ordinal);

    /// <summary>The new column's value computed from <paramref name="oldValue"/> (SQL).</summary>
    public string ToNew(string oldValue) => Up.Replace(Placeholder, oldValue, StringComparison.Ordinal);

    /// <summary>The old column's value computed from <paramref name="newValue"/> (SQL).</summary>
    public string ToOld(string newValue) => Down.Replace(Placeholder, newValue, StringComparison.Ordinal);

    /// <summary>A row whose old value did not convert (SQL), or null when no value can fail.</summary>
    public string? Unconvertible(string oldValue) => CanFail ? $"({oldValue} IS NOT NULL AND {ToNew(oldValue)} IS NULL)" : null;
}
