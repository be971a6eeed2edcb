using ZeroDowntime.Bench.Workload;

namespace ZeroDowntime.Bench.Output;

/// <summary>The application's last second in one short phrase, compared with the baseline when there is one.</summary>
public static class AppStatus
{
    public static string LastSecond(WorkloadRecorder recorder, WindowStats? baseline)
    {
        if (recorder.LastCompleteSecond() is not { } s)
        {
            return "app: starting";
        }

        var share = baseline is { Tps: > 0 } b ? $" ({Fmt.Percent(s.Operations / b.Tps)} of baseline)" : "";
        return $"app {Fmt.Count(s.Operations)} tx/s{share}, p99 {Fmt.Ms(s.P99Ms)}, max {Fmt.Ms(s.MaxMs)}, errors {s.Errors}";
    }
}
