using System.Runtime.InteropServices;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// SIGTERM (a scheduler, systemd, Kubernetes ending the job) while a backfill runs: ask it to stop
/// after the batch in flight commits, wait until the command has written its last line and its
/// output, then let the signal's default action end the process (exit code 143 = 128 + SIGTERM, so
/// the caller sees it was terminated). Without this the runtime would end the process at once,
/// rolling the batch in flight back. Ctrl+C (PowerShell's StopProcessing) asks the same stop
/// through <see cref="RequestStop"/>.
/// </summary>
internal sealed class SigtermStop : IDisposable
{
    /// <summary>A batch is bounded by its target time; this only keeps a stuck command from ignoring SIGTERM forever.</summary>
    private static readonly TimeSpan LongestWait = TimeSpan.FromMinutes(2);

    private readonly CancellationTokenSource _stop = new();
    private readonly ManualResetEventSlim _finished = new();
    private readonly PosixSignalRegistration? _registration;
    private volatile bool _done;

    public SigtermStop()
    {
        try
        {
            _registration = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
            {
                _stop.Cancel();
                _finished.Wait(LongestWait);
            });
        }
        catch (PlatformNotSupportedException)
        {
            // No SIGTERM here: the token is simply never cancelled.
        }
    }

    /// <summary>Cancelled by SIGTERM or Ctrl+C: the backfill stops at its next batch boundary.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>Ctrl+C: the same stop as SIGTERM, without ending the process. False once the command is done.</summary>
    public bool RequestStop()
    {
        if (_done)
        {
            return false;
        }

        _stop.Cancel();
        return true;
    }

    /// <summary>The command is done (output written): a waiting SIGTERM may now end the process.</summary>
    public void Dispose()
    {
        _done = true;
        _finished.Set();
        _registration?.Dispose();
    }
}
