using System.Diagnostics;

namespace ZeroDowntime.Bench.Workload;

/// <summary>
/// Collects every application statement's outcome: per second of the run (a time series by
/// completion time) and per named measurement window (a phase, a baseline). A statement belongs
/// to every window its execution overlaps, so a stall that starts inside a short DDL phase and
/// ends after it still counts against that phase. Thread-safe; shared by all simulated clients.
/// </summary>
public sealed class WorkloadRecorder
{
    private const int MaxErrorSamples = 10;

    private readonly object _gate = new();
    private readonly long _origin = Stopwatch.GetTimestamp();
    private readonly List<SecondBucket> _seconds = new();
    private readonly List<MeasurementWindow> _windows = new();

    /// <summary>Time since the recorder was created: the clock every window and second refers to.</summary>
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_origin);

    public void RecordSuccess(long startTimestamp, long endTimestamp) => Record(startTimestamp, endTimestamp, null);

    public void RecordError(long startTimestamp, long endTimestamp, string error) => Record(startTimestamp, endTimestamp, error);

    /// <summary>Starts a window now; statements overlapping it from now until End() count in it.</summary>
    public MeasurementWindow BeginWindow(string name)
    {
        lock (_gate)
        {
            var window = new MeasurementWindow(this, name, Elapsed);
            _windows.Add(window);
            return window;
        }
    }

    /// <summary>The complete seconds in [from, to): statements completed, errors, p99 and max.</summary>
    public IReadOnlyList<SecondSample> Seconds(TimeSpan from, TimeSpan to)
    {
        var first = (int)Math.Ceiling(from.TotalSeconds);
        var last = (int)Math.Floor(to.TotalSeconds); // exclusive
        var samples = new List<SecondSample>();
        lock (_gate)
        {
            for (var s = first; s < last; s++)
            {
                samples.Add(s < _seconds.Count ? _seconds[s].Sample(s) : new SecondSample(s, 0, 0, 0, 0));
            }
        }

        return samples;
    }

    /// <summary>The last second that is over, for live displays; null in the first second.</summary>
    public SecondSample? LastCompleteSecond()
    {
        var now = Elapsed;
        var list = Seconds(now - TimeSpan.FromSeconds(2), now);
        return list.Count == 0 ? null : list[^1];
    }

    internal WindowStats Snapshot(MeasurementWindow window)
    {
        lock (_gate)
        {
            var end = window.EndTime ?? Elapsed;
            var perSecond = Seconds(window.StartTime, end).Select(s => s.Operations).ToList();
            return new WindowStats(
                window.Name,
                (end - window.StartTime).TotalSeconds,
                window.Operations,
                window.Errors,
                window.Histogram.PercentileMicros(50) / 1000.0,
                window.Histogram.PercentileMicros(99) / 1000.0,
                window.Histogram.MaxMicros / 1000.0,
                perSecond,
                window.ErrorSamples.Select(e => $"{e.Value} x {e.Key}").ToList());
        }
    }

    private void Record(long startTimestamp, long endTimestamp, string? error)
    {
        var micros = (long)Stopwatch.GetElapsedTime(startTimestamp, endTimestamp).TotalMicroseconds;
        var start = Stopwatch.GetElapsedTime(_origin, startTimestamp);
        var end = Stopwatch.GetElapsedTime(_origin, endTimestamp);
        var second = (int)end.TotalSeconds;
        lock (_gate)
        {
            while (_seconds.Count <= second)
            {
                _seconds.Add(new SecondBucket());
            }

            _seconds[second].Add(micros, error is not null);
            foreach (var window in _windows)
            {
                if (start < (window.EndTime ?? TimeSpan.MaxValue) && end >= window.StartTime)
                {
                    window.Add(micros, error);
                }
            }
        }
    }

    internal void Close(MeasurementWindow window)
    {
        lock (_gate)
        {
            window.EndTime ??= Elapsed;
        }
    }

    private sealed class SecondBucket
    {
        private readonly LatencyHistogram _histogram = new();
        private int _errors;

        public void Add(long micros, bool failed)
        {
            if (failed)
            {
                _errors++;
            }
            else
            {
                _histogram.Record(micros);
            }
        }

        public SecondSample Sample(int second)
            => new(second, (int)_histogram.Count, _errors, _histogram.PercentileMicros(99) / 1000.0, _histogram.MaxMicros / 1000.0);
    }

    /// <summary>Error counts by message, capped so a storm of errors cannot grow without bound.</summary>
    internal static void AddError(Dictionary<string, int> samples, string error)
    {
        if (samples.TryGetValue(error, out var n))
        {
            samples[error] = n + 1;
        }
        else if (samples.Count < MaxErrorSamples)
        {
            samples[error] = 1;
        }
    }
}

/// <summary>One second of the run: statements that completed in it and their latency.</summary>
public sealed record SecondSample(int Second, int Operations, int Errors, double P99Ms, double MaxMs);

/// <summary>A named stretch of the run whose statements are summarised together (a phase, a baseline).</summary>
public sealed class MeasurementWindow
{
    private readonly WorkloadRecorder _recorder;

    internal MeasurementWindow(WorkloadRecorder recorder, string name, TimeSpan start)
    {
        _recorder = recorder;
        Name = name;
        StartTime = start;
    }

    public string Name { get; }

    public TimeSpan StartTime { get; }

    public TimeSpan? EndTime { get; internal set; }

    internal LatencyHistogram Histogram { get; } = new();

    internal long Operations { get; private set; }

    internal long Errors { get; private set; }

    internal Dictionary<string, int> ErrorSamples { get; } = new(StringComparer.Ordinal);

    /// <summary>Closes the window and returns its summary.</summary>
    public WindowStats End()
    {
        _recorder.Close(this);
        return Stats();
    }

    /// <summary>The summary so far (the window may still be open).</summary>
    public WindowStats Stats() => _recorder.Snapshot(this);

    internal void Add(long micros, string? error)
    {
        if (error is null)
        {
            Operations++;
            Histogram.Record(micros);
        }
        else
        {
            Errors++;
            WorkloadRecorder.AddError(ErrorSamples, error);
        }
    }
}
