using System.Globalization;
using System.Management.Automation;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// Rejects TimeSpan arguments outside a range, in milliseconds. Needed because PowerShell turns a
/// bare number into ticks: -LockTimeout 500 means 50 microseconds, which the lock_timeout setting
/// would round down to '0ms', and 0 disables PostgreSQL's lock timeout altogether.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateTimeSpanRangeAttribute : ValidateArgumentsAttribute
{
    public ValidateTimeSpanRangeAttribute(double minimumMilliseconds, double maximumMilliseconds)
    {
        MinimumMilliseconds = minimumMilliseconds;
        MaximumMilliseconds = maximumMilliseconds;
    }

    public double MinimumMilliseconds { get; }

    public double MaximumMilliseconds { get; }

    protected override void Validate(object arguments, EngineIntrinsics engineIntrinsics)
    {
        var value = arguments is PSObject wrapped ? wrapped.BaseObject : arguments;
        if (value is not TimeSpan span)
        {
            throw new ValidationMetadataException("The argument must be a TimeSpan, e.g. '00:00:00.500' or (New-TimeSpan -Seconds 2).");
        }

        if (span.TotalMilliseconds < MinimumMilliseconds || span.TotalMilliseconds > MaximumMilliseconds)
        {
            throw new ValidationMetadataException(string.Format(
                CultureInfo.InvariantCulture,
                "{0} is outside the allowed range of {1} ms to {2} ms. A bare number is read as ticks; write a TimeSpan such as '00:00:00.500' or (New-TimeSpan -Milliseconds 500).",
                span,
                MinimumMilliseconds,
                MaximumMilliseconds));
        }
    }
}
