using System.Management.Automation;
using ZeroDowntime.Engine.Observing;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// Turns the engine's progress reports into ProgressRecords. PowerShell identifies a progress bar
/// by its activity id, so each distinct activity text keeps the same id for the life of the cmdlet:
/// later reports update the same bar instead of stacking new ones.
/// </summary>
internal sealed class ProgressRecordFactory
{
    private const string FallbackActivity = "ZeroDowntime";

    private readonly Dictionary<string, int> activityIds = new(StringComparer.Ordinal);

    public ProgressRecord Create(ProgressUpdate update)
    {
        // ProgressRecord rejects an empty activity or status, so an empty report must not become an exception.
        var activity = string.IsNullOrWhiteSpace(update.Activity) ? FallbackActivity : update.Activity;
        var status = string.IsNullOrWhiteSpace(update.Status) ? (update.Completed ? "Done" : "Working") : update.Status;

        return new ProgressRecord(ActivityIdOf(activity), activity, status)
        {
            // PercentComplete throws outside -1..100; an estimate can overshoot.
            PercentComplete = Math.Clamp(update.PercentComplete, -1, 100),
            SecondsRemaining = update.SecondsRemaining < 0 ? -1 : update.SecondsRemaining,
            RecordType = update.Completed ? ProgressRecordType.Completed : ProgressRecordType.Processing,
        };
    }

    public int ActivityIdOf(string activity)
    {
        if (!activityIds.TryGetValue(activity, out var id))
        {
            id = activityIds.Count + 1;
            activityIds.Add(activity, id);
        }

        return id;
    }
}
