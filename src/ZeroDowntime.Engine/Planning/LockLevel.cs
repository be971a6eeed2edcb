namespace ZeroDowntime.Engine.Planning;

/// <summary>PostgreSQL's table-level lock modes, weakest first, plus None for statements that lock no table.</summary>
public enum LockLevel
{
    None,
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

public static class LockLevelNames
{
    /// <summary>The name PostgreSQL's documentation uses, e.g. "ACCESS EXCLUSIVE".</summary>
    public static string ToSqlName(this LockLevel level) => level switch
    {
        LockLevel.None => "no table lock",
        LockLevel.AccessShare => "ACCESS SHARE",
        LockLevel.RowShare => "ROW SHARE",
        LockLevel.RowExclusive => "ROW EXCLUSIVE",
        LockLevel.ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
        LockLevel.Share => "SHARE",
        LockLevel.ShareRowExclusive => "SHARE ROW EXCLUSIVE",
        LockLevel.Exclusive => "EXCLUSIVE",
        LockLevel.AccessExclusive => "ACCESS EXCLUSIVE",
        _ => level.ToString(),
    };
}
