using System.Text;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Planning;

/// <summary>
/// A plan file: the SQL scripts of one or more phases (<see cref="PhasePlan.ToScript"/>), each under
/// a header naming the phase (<see cref="PhasePlan.Key"/>), written for review (-PlanPath) and read
/// back at run time (-ExpectedPlan) to refuse SQL nobody approved. The comparison is on the SQL lines
/// only (comment lines and blank lines left out): the summary, step titles and reasons are prose a
/// reviewer may annotate, the statements, their transactions and their lock_timeout are what runs.
/// </summary>
public sealed class ApprovedPlan
{
    /// <summary>The first line of each section; what follows it on the line is the plan's <see cref="PhasePlan.Key"/>.</summary>
    public const string HeaderPrefix = "-- ZeroDowntime plan: ";

    private readonly string _source;
    private readonly IReadOnlyList<(string Key, IReadOnlyList<string> Sql)> _sections;

    private ApprovedPlan(string source, IReadOnlyList<(string Key, IReadOnlyList<string> Sql)> sections)
    {
        _source = source;
        _sections = sections;
    }

    /// <summary>The keys of the plans in the file, in order.</summary>
    public IReadOnlyList<string> Keys => _sections.Select(s => s.Key).ToList();

    /// <summary>One plan as a section of a plan file: its header, when it was planned, then its script.</summary>
    public static string Section(PhasePlan plan, TimeSpan lockTimeout, DateTimeOffset plannedAt)
        => $"{HeaderPrefix}{plan.Key}\n-- planned {plannedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z; run it with -ExpectedPlan <this file> to refuse any other SQL\n{plan.ToScript(lockTimeout)}";

    /// <summary>Reads a plan file's text; <paramref name="source"/> (its path) names it in errors.</summary>
    public static ApprovedPlan Parse(string text, string source)
    {
        var sections = new List<(string Key, IReadOnlyList<string> Sql)>();
        string? key = null;
        var body = new StringBuilder();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith(HeaderPrefix, StringComparison.Ordinal))
            {
                if (key is not null)
                {
                    sections.Add((key, SqlLines(body.ToString())));
                }

                key = line[HeaderPrefix.Length..].Trim();
                body.Clear();
                continue;
            }

            // Text before the first header (a reviewer's note) belongs to no plan.
            body.Append(line).Append('\n');
        }

        if (key is not null)
        {
            sections.Add((key, SqlLines(body.ToString())));
        }

        if (sections.Count == 0)
        {
            throw new ZdtException(
                ErrorIds.PlanNotApproved,
                ErrorKind.InvalidData,
                $"{source} is not a ZeroDowntime plan file: it has no line starting with '{HeaderPrefix.Trim()}' (write one with -PlanPath). Nothing was changed.")
            { TargetObject = source };
        }

        return new ApprovedPlan(source, sections);
    }

    /// <summary>
    /// Refuses (PlanNotApproved) unless a section of the file has this plan's key and exactly its SQL
    /// lines. A plan with nothing to run (<see cref="PhasePlan.AlreadyDone"/>) needs no approval.
    /// </summary>
    public void Require(PhasePlan plan, TimeSpan lockTimeout)
    {
        if (plan.AlreadyDone)
        {
            return;
        }

        var now = SqlLines(plan.ToScript(lockTimeout));
        var sameKey = _sections.Where(s => s.Key == plan.Key).ToList();
        if (sameKey.Any(s => s.Sql.SequenceEqual(now, StringComparer.Ordinal)))
        {
            return;
        }

        var why = sameKey.Count == 0
            ? $"it has no plan for {plan.Key} (it has: {string.Join("; ", Keys)})"
            : $"its plan for {plan.Key} has other SQL: {FirstDifference(sameKey[0].Sql, now)}";
        throw new ZdtException(
            ErrorIds.PlanNotApproved,
            ErrorKind.InvalidOperation,
            $"The SQL planned now is not the approved plan {_source}: {why}. Nothing was changed; review the new plan (-PlanOnly -PlanPath) and have it approved.")
        { TargetObject = plan.Target };
    }

    /// <summary>The lines of a script that run: every line but blank ones and whole-line comments, without trailing blanks.</summary>
    internal static IReadOnlyList<string> SqlLines(string script)
        => script.Split('\n')
            .Select(line => line.TrimEnd('\r', ' ', '\t'))
            .Where(line => line.Length > 0 && !line.TrimStart().StartsWith("--", StringComparison.Ordinal))
            .ToList();

    private static string FirstDifference(IReadOnlyList<string> approved, IReadOnlyList<string> now)
    {
        for (var i = 0; i < Math.Max(approved.Count, now.Count); i++)
        {
            var was = i < approved.Count ? approved[i] : null;
            var current = i < now.Count ? now[i] : null;
            if (was != current)
            {
                return $"SQL line {i + 1} approved {Quote(was)}, now {Quote(current)}";
            }
        }

        return "the same lines";
    }

    private static string Quote(string? line) => line is null ? "(nothing)" : $"'{line}'";
}
