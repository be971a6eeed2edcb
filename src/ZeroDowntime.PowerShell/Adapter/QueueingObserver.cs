using System.Collections.Concurrent;
using ZeroDowntime.Engine.Observing;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// The observer the cmdlets hand to the engine: it only queues what the engine reports (from any
/// thread); <see cref="ZdtCmdletBase"/> drains the queue on the pipeline thread.
/// </summary>
internal sealed class QueueingObserver : IMigrationObserver
{
    private readonly BlockingCollection<EngineMessage> queue;

    public QueueingObserver(BlockingCollection<EngineMessage> queue)
    {
        this.queue = queue;
    }

    public void Verbose(string message) => Post(new VerboseMessage(message));

    public void Warning(string message) => Post(new WarningMessage(message));

    public void Progress(ProgressUpdate update) => Post(new ProgressMessage(update));

    public void Information(string message) => Post(new InformationMessage(message));

    private void Post(EngineMessage message)
    {
        try
        {
            queue.Add(message);
        }
        catch (InvalidOperationException)
        {
            // Also catches ObjectDisposedException. The engine call has already returned and the
            // cmdlet stopped listening: a report that arrives this late (from a stray background
            // continuation) has nowhere to go, and must not turn into an engine failure.
        }
    }
}
