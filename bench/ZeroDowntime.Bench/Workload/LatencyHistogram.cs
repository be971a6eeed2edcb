using System.Numerics;

namespace ZeroDowntime.Bench.Workload;

/// <summary>
/// Latencies in microseconds, in log-linear buckets (32 per power of two, so any percentile is
/// within about 3% of the true value) plus the exact maximum. Fixed size whatever the count, so one
/// can be kept per second of a run. Not thread-safe: the recorder serialises access.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBuckets = 32;
    private const int SubBucketBits = 5;
    private const int BucketCount = 64 * SubBuckets;

    private readonly long[] _counts = new long[BucketCount];

    public long Count { get; private set; }

    public long MaxMicros { get; private set; }

    public void Record(long micros)
    {
        micros = Math.Max(0, micros);
        _counts[IndexOf(micros)]++;
        Count++;
        MaxMicros = Math.Max(MaxMicros, micros);
    }

    public void Add(LatencyHistogram other)
    {
        for (var i = 0; i < BucketCount; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
        MaxMicros = Math.Max(MaxMicros, other.MaxMicros);
    }

    /// <summary>The latency at or below which <paramref name="percentile"/>% of the values lie (0 when empty).</summary>
    public long PercentileMicros(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }

        var rank = (long)Math.Ceiling(percentile / 100.0 * Count);
        rank = Math.Clamp(rank, 1, Count);
        long seen = 0;
        for (var i = 0; i < BucketCount; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(UpperBoundOf(i), MaxMicros);
            }
        }

        return MaxMicros;
    }

    public LatencyHistogram Clone()
    {
        var copy = new LatencyHistogram();
        copy.Add(this);
        return copy;
    }

    private static int IndexOf(long micros)
    {
        if (micros < SubBuckets)
        {
            return (int)micros;
        }

        var msb = 63 - BitOperations.LeadingZeroCount((ulong)micros);
        var shift = msb - SubBucketBits;
        var sub = (int)(micros >> shift) - SubBuckets;
        return Math.Min(BucketCount - 1, ((shift + 1) * SubBuckets) + sub);
    }

    private static long UpperBoundOf(int index)
    {
        if (index < SubBuckets)
        {
            return index;
        }

        var shift = (index / SubBuckets) - 1;
        var sub = (index % SubBuckets) + SubBuckets;
        return ((long)(sub + 1) << shift) - 1;
    }
}
