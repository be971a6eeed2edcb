using System.Globalization;
using System.Management.Automation;
using System.Text.RegularExpressions;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// The one converter of every duration parameter: a TimeSpan, a number with its unit ('500ms',
/// '1.5s', '2m', '1h', '1d') or a TimeSpan string ('00:00:00.5'). A bare number is refused with a
/// message: PowerShell would otherwise read it as ticks (-Delay 500 is 50 microseconds), and no
/// single unit would be right for both a lock timeout and a replication lag.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed partial class DurationAttribute : ArgumentTransformationAttribute
{
    public const string Accepted = "Write a duration with its unit ('500ms', '1.5s', '2m', '1h'), a TimeSpan string ('00:00:00.5') or a TimeSpan ((New-TimeSpan -Seconds 2))";

    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
        return value switch
        {
            TimeSpan span => span,
            string text => Parse(text),
            sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal =>
                throw new ArgumentTransformationMetadataException(string.Format(
                    CultureInfo.InvariantCulture,
                    "{0} is a bare number, and a duration needs its unit: PowerShell would read it as ticks (100 ns each). {1}.",
                    Convert.ToString(value, CultureInfo.InvariantCulture),
                    Accepted)),
            _ => throw new ArgumentTransformationMetadataException($"A value of type {value?.GetType().Name ?? "null"} is not a duration. {Accepted}."),
        };
    }

    /// <summary>Reads '500ms', '2 m', '00:00:00.5'; refuses a bare number and anything else.</summary>
    public static TimeSpan Parse(string text)
    {
        var trimmed = text.Trim();
        var match = WithUnit().Match(trimmed);
        if (match.Success)
        {
            var amount = double.Parse(match.Groups["amount"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            return match.Groups["unit"].Value.ToLowerInvariant() switch
            {
                "ms" => TimeSpan.FromMilliseconds(amount),
                "s" => TimeSpan.FromSeconds(amount),
                "m" or "min" => TimeSpan.FromMinutes(amount),
                "h" => TimeSpan.FromHours(amount),
                _ => TimeSpan.FromDays(amount),
            };
        }

        if (BareNumber().IsMatch(trimmed))
        {
            throw new ArgumentTransformationMetadataException($"'{trimmed}' is a bare number, and a duration needs its unit. {Accepted}.");
        }

        if (TimeSpan.TryParse(trimmed, CultureInfo.InvariantCulture, out var span))
        {
            return span;
        }

        throw new ArgumentTransformationMetadataException($"'{trimmed}' is not a duration. {Accepted}.");
    }

    [GeneratedRegex(@"^(?<amount>\d+(\.\d+)?)\s*(?<unit>ms|s|min|m|h|d)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex WithUnit();

    [GeneratedRegex(@"^[+-]?\d+(\.\d+)?$", RegexOptions.CultureInvariant)]
    private static partial Regex BareNumber();
}
