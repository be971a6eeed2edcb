using System.Globalization;

namespace ZeroDowntime.Bench.Output;

/// <summary>Number formats shared by the console and the results file (invariant culture: results must diff cleanly).</summary>
public static class Fmt
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Ms(double ms) => ms switch
    {
        < 10 => ms.ToString("0.00", Invariant) + " ms",
        < 100 => ms.ToString("0.0", Invariant) + " ms",
        _ => ms.ToString("N0", Invariant) + " ms",
    };

    public static string Seconds(double s) => s < 10 ? s.ToString("0.00", Invariant) + " s" : s.ToString("N1", Invariant) + " s";

    public static string Count(double n) => n.ToString("N0", Invariant);

    public static string Rate(double perSecond, string unit) => $"{Count(perSecond)} {unit}/s";

    public static string Percent(double ratio) => (ratio * 100).ToString("0", Invariant) + "%";

    public static string Ratio(double ratio) => ratio.ToString("0.00", Invariant);

    public static string Times(double ratio) => ratio.ToString("0.0", Invariant) + "x";

    public static string Pass(bool ok) => ok ? "PASS" : "FAIL";
}
