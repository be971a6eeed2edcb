namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// How a value of the old column becomes one of the new column (Up) and back (Down), as SQL
/// templates in which <see cref="Placeholder"/> stands for the source value. The sync trigger, the
/// backfill and the parity check all render the same templates, so they can never disagree about
/// what "in sync" means. A rename is the identity; a type change supplies casts.
/// </summary>
internal sealed record ColumnConversion(string Up, string Down)
{
    public const string Placeholder = "{value}";

    public static ColumnConversion Identity { get; } = new(Placeholder, Placeholder);

    public bool IsIdentity => Up == Placeholder && Down == Placeholder;

    /// <summary>The new column's value computed from <paramref name="oldValue"/> (SQL).</summary>
    public string ToNew(string oldValue) => Up.Replace(Placeholder, oldValue, StringComparison.Ordinal);

    /// <summary>The old column's value computed from <paramref name="newValue"/> (SQL).</summary>
    public string ToOld(string newValue) => Down.Replace(Placeholder, newValue, StringComparison.Ordinal);
}
