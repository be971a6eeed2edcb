namespace ZeroDowntime.Engine.Execution;

/// <summary>How a DDL step went: how many lock attempts, how long we waited, and how long the
/// successful attempt's transaction (and so its locks) lasted.</summary>
public sealed record StepResult(string Title, int Attempts, TimeSpan TotalElapsed, TimeSpan LockHeldFor);
