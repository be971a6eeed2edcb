using System.Collections.Concurrent;

namespace ZeroDowntime.Tests.Support;

/// <summary>
/// What every simulated application of the tests shares: sessions that loop in the background
/// until stopped, counting the statements that succeeded and recording the errors they met (an
/// assertion on them is the point of most load tests: no error, and enough statements to mean it).
/// </summary>
public abstract class BackgroundSessions : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private Task _sessions = Task.CompletedTask;
    private long _statements;

    /// <summary>The statements that succeeded, every session together.</summary>
    public long Statements => Interlocked.Read(ref _statements);

    public IReadOnlyList<string> Errors => _errors.ToList();

    /// <summary>Cancelled by <see cref="StopAsync"/>: each session's loop ends when it is.</summary>
    protected CancellationToken Stopping => _stop.Token;

    public async Task StopAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
        }

        await _sessions;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Starts the sessions on the thread pool (once, from the subclass's factory).</summary>
    protected void Run(params Func<Task>[] sessions) => _sessions = Task.WhenAll(sessions.Select(Task.Run));

    protected void Succeeded() => Interlocked.Increment(ref _statements);

    protected void Failed(string error) => _errors.Enqueue(error);
}
