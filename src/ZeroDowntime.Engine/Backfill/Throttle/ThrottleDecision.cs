namespace ZeroDowntime.Engine.Backfill.Throttle;

/// <summary>What the adaptive throttle decided, and on what evidence.</summary>
public enum ThrottleAction
{
    /// <summary>The first look, before the first batch: busy or not.</summary>
    Start,

    /// <summary>Nobody else is working: full speed, no probes.</summary>
    Idle,

    /// <summary>The others lost more than the limit: smaller duty cycle.</summary>
    BackOff,

    /// <summary>The others lost (almost) nothing: larger duty cycle.</summary>
    Recover,

    /// <summary>In between: keep the duty cycle.</summary>
    Hold,
}

/// <param name="At">Time since the backfill started.</param>
/// <param name="Action">What was decided.</param>
/// <param name="Duty">The share of time the backfill works from now on (1: no pause between batches).</param>
/// <param name="Harm">The others' loss of rate while the backfill worked, against a pause (null when not measured).</param>
/// <param name="WorkingRate">Others' transactions per second while the backfill worked.</param>
/// <param name="PausedRate">Others' transactions per second while it paused (the baseline).</param>
/// <param name="ActiveSessions">Others' mean active sessions (PostgreSQL 14+).</param>
/// <param name="Probed">Whether this decision came with a probe (a pause of the backfill).</param>
/// <param name="HarmError">The standard error of <paramref name="Harm"/>, from the server's own noise (null when not known).</param>
/// <param name="Probes">How many probes at this duty <paramref name="Harm"/> averages (a probed decision; 0 otherwise).</param>
public sealed record ThrottleDecision(TimeSpan At, ThrottleAction Action, double Duty, double? Harm, double? WorkingRate, double? PausedRate, double? ActiveSessions, bool Probed, double? HarmError = null, int Probes = 0)
{
    public override string ToString()
    {
        var error = HarmError is { } e and > 0 ? FormattableString.Invariant($" ± {e:P0}") : "";
        var over = Probes > 1 ? FormattableString.Invariant($" over {Probes} probes") : "";
        var harm = Harm is { } h ? FormattableString.Invariant($", others lost {h:P0}{error}{over}") : "";
        var rates = FormattableString.Invariant($"others {WorkingRate ?? PausedRate ?? 0:N0} tx/s{(WorkingRate is not null && PausedRate is not null ? FormattableString.Invariant($" working vs {PausedRate:N0} paused") : "")}");
        var active = ActiveSessions is { } a ? FormattableString.Invariant($", {a:0.0} active") : "";
        return FormattableString.Invariant($"{Action.ToString().ToLowerInvariant()}: duty {Duty:P0} ({rates}{active}{harm}{(Probed ? ", probed" : "")})");
    }
}
