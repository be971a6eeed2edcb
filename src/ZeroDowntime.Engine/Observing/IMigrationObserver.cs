namespace ZeroDowntime.Engine.Observing;

/// <summary>
/// How the engine tells its caller what it is doing. The PowerShell layer turns these into
/// Write-Verbose, Write-Warning and Write-Progress; tests and the bench record them.
/// Implementations must be thread-safe: the engine may report from any thread.
/// </summary>
public interface IMigrationObserver
{
    void Verbose(string message);

    void Warning(string message);

    void Progress(ProgressUpdate update);

    /// <summary>
    /// What an unattended run's log must show without -Verbose: lock attempts and their blockers,
    /// pauses and why. The cmdlets write it as a timestamped Information line; an observer that
    /// does not tell it apart gets it as verbose text.
    /// </summary>
    void Information(string message) => Verbose(message);
}

/// <summary>One progress report of a long-running piece of work (a backfill, a parity scan).</summary>
/// <param name="Activity">What is running, e.g. "Backfill public.orders.address -> billing_address".</param>
/// <param name="Status">A short line of current state, e.g. "120,000 of 1,000,000 rows, 25,000 rows/s".</param>
/// <param name="PercentComplete">0-100, or -1 when unknown.</param>
/// <param name="SecondsRemaining">Estimated seconds left, or -1 when unknown.</param>
/// <param name="Completed">True once the activity has finished (the progress bar should close).</param>
public sealed record ProgressUpdate(
    string Activity,
    string Status,
    int PercentComplete = -1,
    int SecondsRemaining = -1,
    bool Completed = false);

/// <summary>An observer that drops everything; the default when the caller passes none.</summary>
public sealed class NullObserver : IMigrationObserver
{
    public static readonly NullObserver Instance = new();

    private NullObserver()
    {
    }

    public void Verbose(string message)
    {
    }

    public void Warning(string message)
    {
    }

    public void Progress(ProgressUpdate update)
    {
    }
}
