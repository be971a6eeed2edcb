using System.Collections.Concurrent;
using ZeroDowntime.Engine.Observing;

namespace ZeroDowntime.Tests.Support;

/// <summary>Keeps everything the engine reported, so tests can assert on it.</summary>
public sealed class RecordingObserver : IMigrationObserver
{
    public ConcurrentQueue<string> VerboseMessages { get; } = new();

    public ConcurrentQueue<string> Warnings { get; } = new();

    public ConcurrentQueue<ProgressUpdate> ProgressUpdates { get; } = new();

    /// <summary>Called on every verbose message, on the engine's thread: lets a test act at a given step.</summary>
    public Action<string>? OnVerbose { get; init; }

    public void Verbose(string message)
    {
        VerboseMessages.Enqueue(message);
        OnVerbose?.Invoke(message);
    }

    public void Warning(string message) => Warnings.Enqueue(message);

    public void Progress(ProgressUpdate update) => ProgressUpdates.Enqueue(update);

    public string AllText => string.Join("\n", VerboseMessages.Concat(Warnings));
}
