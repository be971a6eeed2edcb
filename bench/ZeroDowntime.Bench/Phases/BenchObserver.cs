using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using ZeroDowntime.Engine.Observing;

namespace ZeroDowntime.Bench.Phases;

/// <summary>A DDL step the engine is about to run (it has not asked for its lock yet).</summary>
public sealed record StepStart(long MigrationId, string Action, int Index, int Count, string Title);

/// <summary>How one DDL step went, as the lock-safe executor reported it.</summary>
public sealed record StepTiming(string Title, int Attempts, double LockHeldMs);

/// <summary>
/// Turns what the engine reports into measurements. The engine says what it does in verbose
/// messages: "Migration 3: expand step 1/2: ..." before a step, "'...' done after 2 attempt(s);
/// its transaction held locks for 4.2 ms." after it (StepResult.LockHeldFor). The bench reads those
/// rather than needing an engine hook; if their wording changes, <see cref="UnparsedStepReports"/>
/// says so instead of silently reporting nothing.
/// </summary>
public sealed partial class BenchObserver : IMigrationObserver
{
    private readonly object _logGate = new();
    private ProgressUpdate? _latest;
    private int _lockRetries;
    private int _unparsed;

    public BenchObserver(TextWriter? log = null)
    {
        Log = log;
    }

    /// <summary>Raised synchronously before each DDL step; a handler may block to set something up first (a lock holder).</summary>
    public event Action<StepStart>? StepStarting;

    /// <summary>Every verbose and warning message goes here too (the run's engine log), when set.</summary>
    public TextWriter? Log { get; }

    public ConcurrentQueue<StepTiming> CompletedSteps { get; } = new();

    public ConcurrentQueue<string> Warnings { get; } = new();

    /// <summary>The last progress report of a backfill or parity scan.</summary>
    public ProgressUpdate? LatestProgress => Volatile.Read(ref _latest);

    /// <summary>DDL attempts that hit lock_timeout and were retried.</summary>
    public int LockRetries => Volatile.Read(ref _lockRetries);

    /// <summary>"done after" messages that did not parse: the engine's wording changed.</summary>
    public int UnparsedStepReports => Volatile.Read(ref _unparsed);

    public void Verbose(string message)
    {
        Write("VERBOSE", message);
        if (StepStartPattern().Match(message) is { Success: true } start)
        {
            StepStarting?.Invoke(new StepStart(
                long.Parse(start.Groups["id"].Value, CultureInfo.InvariantCulture),
                start.Groups["action"].Value,
                int.Parse(start.Groups["i"].Value, CultureInfo.InvariantCulture),
                int.Parse(start.Groups["n"].Value, CultureInfo.InvariantCulture),
                start.Groups["title"].Value));
        }
        else if (message.Contains("its transaction held locks for", StringComparison.Ordinal))
        {
            if (StepDonePattern().Match(message) is { Success: true } done)
            {
                CompletedSteps.Enqueue(new StepTiming(
                    done.Groups["title"].Value,
                    int.Parse(done.Groups["attempts"].Value, CultureInfo.InvariantCulture),
                    double.Parse(done.Groups["ms"].Value, CultureInfo.InvariantCulture)));
            }
            else
            {
                Interlocked.Increment(ref _unparsed);
            }
        }
        else if (message.Contains("': could not get ", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _lockRetries);
        }
    }

    public void Warning(string message)
    {
        Write("WARNING", message);
        Warnings.Enqueue(message);
    }

    public void Progress(ProgressUpdate update) => Volatile.Write(ref _latest, update);

    /// <summary>Empties the queue of completed steps (what a phase did, when called after it).</summary>
    public IReadOnlyList<StepTiming> DrainSteps()
    {
        var steps = new List<StepTiming>();
        while (CompletedSteps.TryDequeue(out var step))
        {
            steps.Add(step);
        }

        return steps;
    }

    private void Write(string level, string message)
    {
        if (Log is null)
        {
            return;
        }

        lock (_logGate)
        {
            Log.WriteLine($"{DateTimeOffset.Now:HH:mm:ss.fff} {level}: {message}");
        }
    }

    [GeneratedRegex(@"^Migration (?<id>\d+): (?<action>\w+) step (?<i>\d+)/(?<n>\d+): (?<title>[^\n]*)", RegexOptions.CultureInvariant)]
    private static partial Regex StepStartPattern();

    [GeneratedRegex(@"^'(?<title>.*)' done after (?<attempts>\d+) attempt\(s\); its transaction held locks for (?<ms>[0-9.]+) ms\.$", RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    private static partial Regex StepDonePattern();
}
