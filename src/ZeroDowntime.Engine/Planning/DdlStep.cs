namespace ZeroDowntime.Engine.Planning;

/// <summary>
/// One unit of DDL as planned before it runs: the statements, the strongest lock they take and
/// on what, and why. A transactional step runs all its statements in one short transaction under
/// the lock-safe executor; a non-transactional one (CREATE INDEX CONCURRENTLY) runs them one by one.
/// </summary>
public sealed record DdlStep
{
    public DdlStep(string title, IReadOnlyList<string> statements, LockLevel @lock, string lockTarget, string why)
    {
        if (statements.Count == 0)
        {
            throw new ArgumentException("A step needs at least one statement.", nameof(statements));
        }

        Title = title;
        Statements = statements;
        Lock = @lock;
        LockTarget = lockTarget;
        Why = why;
    }

    public string Title { get; }

    public IReadOnlyList<string> Statements { get; }

    /// <summary>The strongest table lock any statement of the step takes.</summary>
    public LockLevel Lock { get; }

    /// <summary>The quoted, qualified relation the lock is taken on (what blockers are looked up for).</summary>
    public string LockTarget { get; }

    /// <summary>
    /// Further tables the step takes the same lock on, in this order, right after <see cref="LockTarget"/>
    /// and before its first statement (a contract that swaps columns of several tables at once): the
    /// order is fixed up front so the step never upgrades or interleaves locks with the application.
    /// </summary>
    public IReadOnlyList<string> AlsoLocks { get; init; } = Array.Empty<string>();

    /// <summary>Why the step is safe, or what it costs (shown by -WhatIf and in the script export).</summary>
    public string Why { get; }

    /// <summary>The statements as one text, each ended by ';': what the ledger records and verbose output shows.</summary>
    public string Sql => string.Join(";\n", Statements) + ";";

    /// <summary>False for statements that cannot run inside a transaction block (CONCURRENTLY).</summary>
    public bool Transactional { get; init; } = true;

    /// <summary>Statements run (best effort, also lock-safe) when the step fails, e.g. dropping an INVALID index.</summary>
    public IReadOnlyList<string> CleanupOnFailure { get; init; } = Array.Empty<string>();

    /// <summary>
    /// lock_timeout for this step instead of the engine's, or null. Only for statements whose lock
    /// waits queue no application query (CONCURRENTLY), which would otherwise fail and redo all their work.
    /// </summary>
    public TimeSpan? LockTimeout { get; init; }

    /// <summary>
    /// The lock is on the partitioned table alone, not its partitions (LOCK TABLE ONLY): a plain
    /// LOCK TABLE on a partitioned table locks every partition too, which ON ONLY DDL does not need.
    /// </summary>
    public bool LocksTargetOnly { get; init; }

    /// <summary>
    /// Whether the step runs with statement_timeout = 0. A step whose strongest lock blocks no read
    /// or write (SHARE UPDATE EXCLUSIVE or weaker: CREATE/DROP INDEX CONCURRENTLY, VALIDATE, ANALYZE)
    /// may take as long as the table needs, and a statement_timeout set on the database or role
    /// would cancel it and leave the phase half done. Steps with stronger locks keep the server's
    /// statement_timeout as a last guard for the application: they are catalog changes of milliseconds.
    /// </summary>
    public bool LiftsStatementTimeout => Lock <= LockLevel.ShareUpdateExclusive;
}
