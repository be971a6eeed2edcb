using System.Diagnostics;
using System.Globalization;
using ZeroDowntime.Engine.Observing;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// Turns the engine's progress reports (shown as a progress bar, which no CI or scheduled-task
/// log keeps) into log lines: the first report of an activity, a change between working and
/// paused, then one line every <see cref="Interval"/>, and a closing line when the activity ends
/// or the command stops before it did. Every line starts with a UTC timestamp.
/// </summary>
internal sealed class ProgressLog
{
    /// <summary>How often a running activity gets a line: often enough to see it move, not so often that a log drowns.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    private readonly Dictionary<string, ActivityState> activities = new(StringComparer.Ordinal);
    private readonly Func<DateTimeOffset> clock;

    public ProgressLog(Func<DateTimeOffset>? clock = null)
    {
        this.clock = clock ?? (() => DateTimeOffset.UtcNow);
    }

    /// <summary>The line this report deserves, or null when the last one was too recent.</summary>
    public string? Line(ProgressUpdate update)
    {
        var now = clock();
        if (!activities.TryGetValue(update.Activity, out var state))
        {
            state = new ActivityState(Stopwatch.StartNew());
            activities.Add(update.Activity, state);
        }

        if (update.Completed)
        {
            activities.Remove(update.Activity);
            var last = state.LastStatus is null ? "" : $"; last report: {state.LastStatus}";
            return Stamp(now, string.Create(CultureInfo.InvariantCulture, $"{update.Activity}: done in {Elapsed(state.Watch.Elapsed)}{last}."));
        }

        var paused = update.Status.StartsWith("paused", StringComparison.OrdinalIgnoreCase);
        var due = state.LastLogged is null || paused != state.Paused || now - state.LastLogged >= Interval;
        state.LastStatus = update.Status;
        state.Paused = paused;
        if (!due)
        {
            return null;
        }

        state.LastLogged = now;
        return Stamp(now, $"{update.Activity}: {update.Status}{Estimate(update)}");
    }

    /// <summary>Closing lines of the activities that had not finished when the command ended or was stopped.</summary>
    public IEnumerable<string> Unfinished(string how)
    {
        var now = clock();
        foreach (var (activity, state) in activities)
        {
            var at = state.LastStatus is null ? "" : $" at {state.LastStatus}";
            yield return Stamp(now, string.Create(CultureInfo.InvariantCulture, $"{activity}: {how}{at} after {Elapsed(state.Watch.Elapsed)}; run the same command again to continue from there."));
        }

        activities.Clear();
    }

    /// <summary>A message with the log's timestamp.</summary>
    public string Stamp(string text) => Stamp(clock(), text);

    private static string Stamp(DateTimeOffset at, string text)
        => string.Create(CultureInfo.InvariantCulture, $"{at.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z {text}");

    private static string Estimate(ProgressUpdate update)
    {
        var percent = update.PercentComplete >= 0 ? string.Create(CultureInfo.InvariantCulture, $", {update.PercentComplete}%") : "";
        var eta = update.SecondsRemaining >= 0 ? $", ETA {Elapsed(TimeSpan.FromSeconds(update.SecondsRemaining))}" : "";
        return percent + eta;
    }

    private static string Elapsed(TimeSpan span)
        => span.TotalHours >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalHours}h{span.Minutes:00}m{span.Seconds:00}s")
            : span.TotalMinutes >= 1
                ? string.Create(CultureInfo.InvariantCulture, $"{span.Minutes}m{span.Seconds:00}s")
                : string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.0}s");

    private sealed class ActivityState
    {
        public ActivityState(Stopwatch watch)
        {
            Watch = watch;
        }

        public Stopwatch Watch { get; }

        public DateTimeOffset? LastLogged { get; set; }

        public string? LastStatus { get; set; }

        public bool Paused { get; set; }
    }
}
