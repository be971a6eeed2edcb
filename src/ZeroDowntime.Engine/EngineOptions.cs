namespace ZeroDowntime.Engine;

/// <summary>Settings that apply to every phase the engine runs.</summary>
public sealed record EngineOptions
{
    /// <summary>
    /// lock_timeout for every DDL attempt. While a DDL statement waits for its lock, every query
    /// on the table queues behind it; this bounds how long the application can be stalled.
    /// </summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>How long to keep retrying a DDL step that cannot get its lock before giving up.</summary>
    public TimeSpan LockRetryTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>The first pause between lock attempts; it grows exponentially with jitter.</summary>
    public TimeSpan LockRetryInitialDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest pause between two lock attempts.</summary>
    public TimeSpan LockRetryMaxDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The schema holding the migration ledger; created on first use.</summary>
    public string LedgerSchema { get; init; } = "zdt";

    internal void Validate()
    {
        // Whole milliseconds go to the server, and lock_timeout = 0 would mean "wait forever".
        if (LockTimeout < TimeSpan.FromMilliseconds(1) || LockTimeout > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentOutOfRangeException(nameof(LockTimeout), LockTimeout, "LockTimeout must be between 1 ms and 1 minute; a long lock_timeout stalls the application behind the waiting DDL.");
        }

        if (LockRetryTimeout < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(LockRetryTimeout), LockRetryTimeout, "LockRetryTimeout cannot be negative.");
        }
    }
}
