using System.Data;
using System.Diagnostics;
using Npgsql;

namespace ZeroDowntime.Bench.Workload;

/// <summary>
/// A simulated application version: a few client connections issuing point reads, updates and
/// inserts through the version's column name, each statement timed and recorded (success or
/// error) in a shared <see cref="WorkloadRecorder"/>. Statements run in autocommit, as most
/// application requests do, so any wait they see comes from someone else's lock or load.
/// </summary>
public sealed class AppSimulator : IAsyncDisposable
{
    private static readonly TimeSpan ReconnectPause = TimeSpan.FromMilliseconds(100);

    private readonly NpgsqlDataSource _dataSource;
    private readonly WorkloadOptions _options;
    private readonly WorkloadRecorder _recorder;
    private readonly CancellationTokenSource _stop = new();
    private readonly string _runTag = Convert.ToHexString(BitConverter.GetBytes(Stopwatch.GetTimestamp()))[..8].ToLowerInvariant();
    private readonly Task[] _workers;
    private long _operations;
    private long _errors;

    // Stopwatch ticks between two statements of one client; 0 = closed loop. Changed by SetRate.
    private long _stepTicks;

    private AppSimulator(NpgsqlDataSource dataSource, AppVersionSpec version, WorkloadOptions options, WorkloadRecorder recorder)
    {
        _dataSource = dataSource;
        Version = version;
        _options = options;
        _recorder = recorder;
        _stepTicks = StepTicks(options.Rate, options.Connections);
        _workers = Enumerable.Range(0, options.Connections).Select(i => Task.Run(() => RunClientAsync(i))).ToArray();
    }

    public AppVersionSpec Version { get; }

    public long Operations => Interlocked.Read(ref _operations);

    public long Errors => Interlocked.Read(ref _errors);

    public bool IsRunning => !_stop.IsCancellationRequested;

    /// <summary>Starts the clients at once; they run until <see cref="StopAsync"/>.</summary>
    public static AppSimulator Start(NpgsqlDataSource dataSource, AppVersionSpec version, WorkloadOptions options, WorkloadRecorder recorder)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Connections, 1);
        return new AppSimulator(dataSource, version, options, recorder);
    }

    /// <summary>
    /// Changes the offered load (statements per second over all connections) while running, e.g.
    /// to shift traffic from one version to the next during a rollout. Open loop only.
    /// </summary>
    public void SetRate(double rate)
    {
        if (_options.Rate is null)
        {
            throw new InvalidOperationException("A closed-loop workload has no rate to change.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rate);
        Interlocked.Exchange(ref _stepTicks, StepTicks(rate, _options.Connections));
    }

    /// <summary>Lets every client finish the statement it is running, then closes its connection.</summary>
    public async Task StopAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(_workers).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task RunClientAsync(int client)
    {
        var random = new Random(_options.Seed + (client * 7919) + Version.Name.Length);
        var paced = _options.Rate is not null;

        // Spread the clients over one interval so the statements do not all start together.
        var next = Stopwatch.GetTimestamp() + (long)(Interlocked.Read(ref _stepTicks) * random.NextDouble());
        var maxBacklog = (long)(_options.MaxBacklog.TotalSeconds * Stopwatch.Frequency);
        var totalWeight = _options.Mix.Reads + _options.Mix.Updates + _options.Mix.Inserts;
        long sequence = 0;
        NpgsqlConnection? connection = null;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                if (paced)
                {
                    var now = Stopwatch.GetTimestamp();
                    if (next > now)
                    {
                        try
                        {
                            await Task.Delay(Stopwatch.GetElapsedTime(now, next), _stop.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                            break;
                        }
                    }
                    else if (now - next > maxBacklog)
                    {
                        next = now;
                    }

                    next += Interlocked.Read(ref _stepTicks);
                }

                var started = Stopwatch.GetTimestamp();
                try
                {
                    connection ??= await _dataSource.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
                    var pick = random.Next(totalWeight);
                    if (pick < _options.Mix.Reads)
                    {
                        await ReadAsync(connection, random.NextInt64(1, _options.IdRange + 1)).ConfigureAwait(false);
                    }
                    else if (pick < _options.Mix.Reads + _options.Mix.Updates)
                    {
                        await ExecuteAsync(connection, Version.UpdateSql, $"{Version.Name} updated {sequence++}", random.NextInt64(1, _options.IdRange + 1)).ConfigureAwait(false);
                    }
                    else
                    {
                        var code = $"{Version.Name}-{_runTag}-{client}-{sequence++}";
                        await ExecuteAsync(connection, Version.InsertSql, code, $"{code} Insert Road", random.Next(1, 10)).ConfigureAwait(false);
                    }

                    _recorder.RecordSuccess(started, Stopwatch.GetTimestamp());
                    Interlocked.Increment(ref _operations);
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
                {
                    _recorder.RecordError(started, Stopwatch.GetTimestamp(), $"{Version.Name}: {Describe(e)}");
                    Interlocked.Increment(ref _errors);
                    if (connection is not null && connection.FullState != ConnectionState.Open)
                    {
                        await connection.DisposeAsync().ConfigureAwait(false);
                        connection = null;
                        await Task.Delay(ReconnectPause).ConfigureAwait(false);
                    }
                }
            }
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static long StepTicks(double? rate, int connections)
        => rate is { } r ? (long)(connections / r * Stopwatch.Frequency) : 0;

    private async Task ReadAsync(NpgsqlConnection connection, long id)
    {
        await using var cmd = new NpgsqlCommand(Version.ReadSql, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
        await using var reader = await cmd.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false);
        while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            _ = reader.IsDBNull(2) ? null : reader.GetString(2);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, params object[] values)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        foreach (var value in values)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        await cmd.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
    }

    private static string Describe(Exception e) => e switch
    {
        PostgresException p => $"{p.SqlState} {p.MessageText}",
        _ => $"{e.GetType().Name}: {e.Message}",
    };
}
