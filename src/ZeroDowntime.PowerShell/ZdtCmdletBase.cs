using System.Collections.Concurrent;
using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Observing;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell;

/// <summary>
/// What every ZeroDowntime cmdlet shares: the connection parameters and the adapter between the
/// asynchronous, thread-agnostic engine and PowerShell's single pipeline thread.
/// </summary>
/// <remarks>
/// The error contract (README, "Errors and exit codes"): RunEngine throws
/// <see cref="EngineFailedException"/> and every cmdlet hands it to <see cref="ReportFailure"/>. A
/// failure about one input object (a table, a migration id, a statement) is a non-terminating
/// error, so the next piped object is still processed; a failure no input can escape (connection,
/// authentication, an untrusted ledger) terminates the command. Every record carries a
/// RecommendedAction. With -ErrorAction Stop or $ErrorActionPreference = 'Stop' every one throws.
/// </remarks>
public abstract class ZdtCmdletBase : PSCmdlet
{
    // Cancelled by StopProcessing (Ctrl+C). Never disposed on purpose: it has no timer, and
    // StopProcessing may run on another thread at any time, even while the cmdlet is finishing.
    private readonly CancellationTokenSource stopping = new();

    private readonly ProgressRecordFactory progress = new();

    private readonly ProgressLog progressLog = new();

    /// <summary>
    /// Tags of the module's log lines. PSHOST makes them show like Write-Host: in a console, a CI
    /// log or a scheduled task's output without -Verbose, and in `*>` / `6>` redirections;
    /// -InformationAction Ignore silences them.
    /// </summary>
    private static readonly string[] LogTags = ["PSHOST", "ZeroDowntime"];

    /// <summary>
    /// Npgsql keywords (Host=...;Database=...) or a postgresql:// URI. Missing parts come from the
    /// PG* environment variables. Takes precedence over a piped -Connection.
    /// </summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? ConnectionString { get; set; }

    /// <summary>User name and password; override those of the connection string and the environment.</summary>
    [Parameter]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <summary>
    /// Where a migration lives, as carried by the Connection property of the Migration objects the
    /// cmdlets output: the next cmdlet in a pipeline reconnects with it, no password in sight.
    /// </summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public ConnectionTarget? Connection { get; set; }

    /// <summary>The schema holding the migration ledger.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string LedgerSchema { get; set; } = "zdt";

    /// <summary>What an unexpected (non-engine) error record names as its target object.</summary>
    protected virtual object? ErrorTarget => null;

    /// <summary>
    /// The connection to use, in order of precedence: -ConnectionString (with -Credential), the piped
    /// -Connection (with -Credential replacing its user and password), else the PG* environment.
    /// </summary>
    protected ConnectionTarget ResolveTarget()
    {
        var hasCredential = Credential is not null && !ReferenceEquals(Credential, PSCredential.Empty);

        // PSCredential.UserName is the name as typed; GetNetworkCredential would split "a\b" into domain and user.
        var userName = hasCredential ? Credential!.UserName : null;
        var password = hasCredential ? Credential!.GetNetworkCredential().Password : null;

        if (!string.IsNullOrWhiteSpace(ConnectionString))
        {
            return ConnectionTarget.Resolve(ConnectionString, userName, password, Environment.GetEnvironmentVariable);
        }

        if (Connection is not null)
        {
            return hasCredential
                ? ConnectionTarget.Resolve(Connection.SafeConnectionString, userName, password, Environment.GetEnvironmentVariable)
                : Connection;
        }

        return ConnectionTarget.Resolve(null, userName, password, Environment.GetEnvironmentVariable);
    }

    protected virtual EngineOptions BuildOptions() => new() { LedgerSchema = LedgerSchema };

    protected MigrationEngine CreateEngine(IMigrationObserver observer)
        => new(ResolveTarget(), BuildOptions(), observer);

    /// <summary>
    /// Runs one engine call on the thread pool and, meanwhile, writes what the engine reports
    /// (verbose, warnings, progress) from this, the pipeline thread. Returns the call's result;
    /// an engine failure comes out as <see cref="EngineFailedException"/>, a Ctrl+C as
    /// PipelineStoppedException.
    /// </summary>
    protected T RunEngine<T>(Func<MigrationEngine, CancellationToken, Task<T>> work)
    {
        using var messages = new BlockingCollection<EngineMessage>();
        Task<T> call;
        try
        {
            var engine = CreateEngine(new QueueingObserver(messages));
            var token = stopping.Token;
            call = Task.Run(() => work(engine, token), token);
        }
        catch (Exception ex)
        {
            // Resolving the connection (a malformed connection string, ...) fails before any task runs.
            throw new EngineFailedException(EngineErrors.ToErrorRecord(ex, ErrorTarget));
        }

        // Closing the queue when the call ends, however it ends, is what ends the pump below.
        _ = call.ContinueWith(
            _ => CloseQuietly(messages),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

        try
        {
            foreach (var message in messages.GetConsumingEnumerable())
            {
                Show(message);
            }
        }
        catch
        {
            // A Write* threw (the pipeline is stopping, or -WarningAction Stop): stop the engine and
            // wait for it, so no DDL goes on unseen after the command has returned. A graceful
            // stop (Ctrl+C of a backfill) lets the engine reach its safe point first. PowerShell
            // marks the pipeline stopping before it calls StopProcessing, so a Write* can throw
            // here before StopProcessing has asked for the graceful stop: ask for it here too
            // (cancelling instead rolled the batch in flight back, a CI run found).
            if (!gracefulStop)
            {
                StopEngine();
            }

            WaitQuietly(call);
            throw;
        }

        try
        {
            var result = call.GetAwaiter().GetResult();
            // A backfill that ended at -MaxBatches (or any limit) says where it stopped.
            WriteLogLines(progressLog.Unfinished("stopped"));
            return result;
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The pipeline is stopping, so PowerShell may refuse to write anything more: best effort.
            try
            {
                WriteLogLines(progressLog.Unfinished("stopped by request"));
            }
            catch (Exception)
            {
                // Nothing more can be written; the ledger's checkpoint is what counts.
            }

            throw new PipelineStoppedException();
        }
        catch (Exception ex)
        {
            throw new EngineFailedException(EngineErrors.ToErrorRecord(ex, ErrorTarget));
        }
    }

    /// <summary>
    /// Reports an engine failure by the module's one error contract: terminating when it ends the
    /// whole command, otherwise non-terminating (the next input object is still processed).
    /// </summary>
    private protected void ReportFailure(EngineFailedException failure)
    {
        if (EngineErrors.EndsCommand(failure.ErrorRecord))
        {
            ThrowTerminatingError(failure.ErrorRecord);
        }

        WriteError(failure.ErrorRecord);
    }

    /// <summary>Ctrl+C: ask the engine to stop; RunEngine waits for it to do so.</summary>
    protected override void StopProcessing() => StopEngine();

    /// <summary>Stops the engine gracefully where the command can (<see cref="StopGracefully"/>), else cancels it.</summary>
    private void StopEngine()
    {
        if (!StopGracefully())
        {
            Cancel();
            return;
        }

        // The command finishes its unit of work (the batch in flight) and stops by itself; only
        // if that takes too long (a lock it keeps waiting for) is it cancelled after all.
        gracefulStop = true;
        _ = Task.Delay(GracefulStopLimit).ContinueWith(_ => Cancel(), TaskScheduler.Default);
    }

    /// <summary>How long Ctrl+C waits for a graceful stop before cancelling the work in flight.</summary>
    private static readonly TimeSpan GracefulStopLimit = TimeSpan.FromSeconds(15);

    private volatile bool gracefulStop;

    /// <summary>
    /// Ctrl+C: a command that can stop at a safe point of its own (Invoke-Backfill: after the batch
    /// in flight commits) asks for that here and returns true; by default the work is cancelled.
    /// </summary>
    private protected virtual bool StopGracefully() => false;

    private void Show(EngineMessage message)
    {
        switch (message)
        {
            case VerboseMessage verbose:
                WriteVerbose(verbose.Text);
                break;
            case WarningMessage warning:
                WriteWarning(warning.Text);
                break;
            case InformationMessage information:
                WriteLog(information.Text);
                break;
            case ProgressMessage update:
                WriteProgress(progress.Create(update.Update));
                if (progressLog.Line(update.Update) is { } line)
                {
                    WriteInformation(line, LogTags);
                }

                break;
        }
    }

    /// <summary>
    /// A timestamped line of the module's log (the Information stream, shown without -Verbose):
    /// what an unattended run must leave behind. Cmdlets use it for their closing summary.
    /// </summary>
    protected void WriteLog(string text) => WriteInformation(progressLog.Stamp(text), LogTags);

    private void WriteLogLines(IEnumerable<string> lines)
    {
        foreach (var line in lines.ToList())
        {
            WriteInformation(line, LogTags);
        }
    }

    private void Cancel()
    {
        try
        {
            stopping.Cancel();
        }
        catch (AggregateException)
        {
            // A cancellation callback of the engine's failed; we are stopping regardless.
        }
    }

    private static void CloseQuietly(BlockingCollection<EngineMessage> messages)
    {
        try
        {
            messages.CompleteAdding();
        }
        catch (ObjectDisposedException)
        {
            // RunEngine already left through its failure path and disposed the queue.
        }
    }

    private static void WaitQuietly(Task task)
    {
        try
        {
            task.Wait();
        }
        catch (AggregateException)
        {
            // Its outcome no longer matters: the command is already failing or stopping.
        }
    }
}
