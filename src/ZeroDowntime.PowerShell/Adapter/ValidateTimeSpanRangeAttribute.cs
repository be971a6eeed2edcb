using System.Globalization;
using System.Management.Automation;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// Rejects TimeSpan arguments outside a range, in milliseconds (after <see cref="DurationAttribute"/>
/// converted them): a lock_timeout of 0 would disable PostgreSQL's lock timeout altogether.
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
            throw new ValidationMetadataException($"The argument must be a duration. {DurationAttribute.Accepted}.");
        }

        if (span.TotalMilliseconds < MinimumMilliseconds || span.TotalMilliseconds > MaximumMilliseconds)
        {
            throw new ValidationMetadataException(string.Format(
                CultureInfo.InvariantCulture,
                "{0} is outside the allowed range of {1} ms to {2} ms.",
                span,
                MinimumMilliseconds,
                MaximumMilliseconds));
        }
    }
}
