using System.Diagnostics;
using System.Globalization;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Observing;

namespace ZeroDowntime.Engine.Backfill.Control;

/// <summary>How the last batch went, for the heartbeat.</summary>
internal readonly record struct BatchReport(double RowsPerSecond, double? EtaSeconds, TimeSpan LastBatch, int BatchSize)
{
    /// <summary>What the adaptive throttle is doing, while it holds the backfill below full speed; null otherwise.</summary>
    public string? Throttle { get; init; }
}

/// <summary>What the backfill does next: the next batch with these (possibly retuned) options, or stop; and how long the gate held it.</summary>
internal sealed record GateDecision(BackfillOptions Options, BackfillStopReason? Stop, string? StopMessage, TimeSpan Waited)
{
    /// <summary>The transactions the gate's reads and heartbeat ended on the server, for the throttle to take out of the counters.</summary>
    public int Transactions { get; init; }
}

/// <summary>
/// The one place a backfill passes between two batches. It stops the run at a batch boundary
/// (time box, a stop request such as SIGTERM), reads the operator's control from the ledger row
/// (pause, retuning), holds the next batch while the server is over -MaxLoad or a replica is over
/// -MaxReplicationLag, and writes the heartbeat Get-Migration shows. Waits are in steps of
/// <see cref="PollInterval"/>, each re-reading everything, so a resume or a retune takes effect
/// within about a second.
/// </summary>
internal sealed class BatchGate
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    /// <summary>While running, the heartbeat (and the control read with it) is written at most this often.</summary>
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(1);

    private readonly ConnectionTarget _target;
    private readonly MigrationLedger _ledger;
    private readonly IMigrationObserver _observer;
    private readonly long _migrationId;
    private readonly string _activity;
    private readonly BackfillOptions _baseline;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ServerLoad _load = new();
    private readonly ReplicaWatch _replicas = new();
    private BackfillControl _control = new();
    private TimeSpan? _lastHeartbeat;
    private string? _lastReason;
    private DateTimeOffset? _lastBatchAt;
    private bool _slept;
    private int _transactions;

    public BatchGate(ConnectionTarget target, MigrationLedger ledger, IMigrationObserver observer, long migrationId, string activity, BackfillOptions options)
    {
        _target = target;
        _ledger = ledger;
        _observer = observer;
        _migrationId = migrationId;
        _activity = activity;
        _baseline = options;
    }

    public BackfillOptions Options => _control.ApplyTo(_baseline);

    /// <summary>A new run starts from its own parameters: an earlier retuning is dropped, a pause is kept.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        await using var connection = await _target.OpenAsync(ct).ConfigureAwait(false);
        _control = (await _ledger.ReadBackfillControlAsync(connection, _migrationId, ct).ConfigureAwait(false)).PauseOnly();
        await _ledger.SetBackfillControlAsync(connection, _migrationId, _control, ct).ConfigureAwait(false);
    }

    /// <summary>Called after each batch commits (not before the first).</summary>
    public void BatchDone(TimeSpan elapsed)
    {
        _lastBatchAt = DateTimeOffset.UtcNow;
        _load.AddOwnActiveTime(elapsed);
    }

    public async Task<GateDecision> BeforeBatchAsync(BatchReport report, CancellationToken ct)
    {
        // Only a gate that held the batch (pause, load, replicas) counts as a pause; its heartbeat alone does not.
        var waiting = Stopwatch.StartNew();
        _slept = false;
        _transactions = 0;
        var decision = await DecideAsync(report, ct).ConfigureAwait(false);
        return (_slept ? decision with { Waited = waiting.Elapsed } : decision) with { Transactions = _transactions };
    }

    private async Task<GateDecision> DecideAsync(BatchReport report, CancellationToken ct)
    {
        while (true)
        {
            if (StopNow() is { } stop)
            {
                return new GateDecision(Options, stop.Reason, stop.Message, TimeSpan.Zero);
            }

            var due = _lastHeartbeat is not { } last || _clock.Elapsed - last >= HeartbeatInterval || _lastReason is not null;
            var options = Options;
            if (!due && options.MaxLoad is null && options.MaxReplicationLag is null)
            {
                return new GateDecision(options, null, null, TimeSpan.Zero);
            }

            // One transaction for the reads and the heartbeat, on a connection not reset on return:
            // the throttle takes exactly that one out of the server's counters.
            BackfillState state;
            string? reason;
            BackfillControl control;
            await using (var connection = await _target.OpenWithoutResetAsync(ct).ConfigureAwait(false))
            await using (var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false))
            {
                (state, reason) = await WhyWaitAsync(connection, options, ct).ConfigureAwait(false);
                if (state == BackfillState.Running && !due)
                {
                    await CommitAsync(tx, ct).ConfigureAwait(false);
                    return new GateDecision(options, null, null, TimeSpan.Zero);
                }

                control = await _ledger.ExchangeBackfillHeartbeatAsync(connection, _migrationId, Status(state, reason, report), ct).ConfigureAwait(false);
                await CommitAsync(tx, ct).ConfigureAwait(false);
            }

            _lastHeartbeat = _clock.Elapsed;
            if (control != _control)
            {
                _control = control;
                _observer.Verbose($"Backfill of migration {_migrationId}: control changed by an operator: {Describe(control)}.");

                // A pause or resume just read must be acted on before the next batch.
                continue;
            }

            if (reason != _lastReason)
            {
                _observer.Verbose(reason is null
                    ? $"Backfill of migration {_migrationId}: running again."
                    : $"Backfill of migration {_migrationId} waits: {reason}.");
                _lastReason = reason;
            }

            if (state == BackfillState.Running)
            {
                return new GateDecision(Options, null, null, TimeSpan.Zero);
            }

            _observer.Progress(new ProgressUpdate(_activity, $"{(state == BackfillState.Paused ? "paused" : "throttled")}: {reason}"));
            await SleepAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task CommitAsync(Npgsql.NpgsqlTransaction tx, CancellationToken ct)
    {
        await tx.CommitAsync(ct).ConfigureAwait(false);
        _transactions++;
    }

    /// <summary>The last heartbeat of the run: stopped (with why and what to do) or finished.</summary>
    public async Task EndAsync(BackfillState state, string? reason, BatchReport report, CancellationToken ct)
    {
        await using var connection = await _target.OpenAsync(ct).ConfigureAwait(false);
        await _ledger.ExchangeBackfillHeartbeatAsync(connection, _migrationId, Status(state, reason, report), ct).ConfigureAwait(false);
    }

    private (BackfillStopReason Reason, string Message)? StopNow()
    {
        var again = BackfillResume.Advice(_migrationId);
        if (_baseline.StopAfterBatch.IsCancellationRequested)
        {
            return (BackfillStopReason.StopRequested, $"stop requested (SIGTERM or Ctrl+C); {again}");
        }

        if (_baseline.MaxDuration is { } duration && _clock.Elapsed >= duration)
        {
            return (BackfillStopReason.TimeBox, string.Create(CultureInfo.InvariantCulture, $"time box of {duration} (-MaxDuration) used up; {again}"));
        }

        if (_baseline.StopAt is { } at && DateTimeOffset.UtcNow >= at)
        {
            return (BackfillStopReason.TimeBox, string.Create(CultureInfo.InvariantCulture, $"-StopAt {at:u} reached; {again}"));
        }

        return null;
    }

    private async Task<(BackfillState State, string? Reason)> WhyWaitAsync(Npgsql.NpgsqlConnection connection, BackfillOptions options, CancellationToken ct)
    {
        if (_control.Paused)
        {
            return (BackfillState.Paused, $"paused by {_control.PausedBy ?? "an operator"} (Suspend-Backfill); Resume-Backfill -Id {_migrationId} continues it");
        }

        if (options.MaxLoad is { } maxLoad)
        {
            var load = await _load.ReadAsync(connection, ct).ConfigureAwait(false);
            if (load > maxLoad)
            {
                return (BackfillState.Throttled, string.Create(CultureInfo.InvariantCulture, $"server load {load:0.0} active sessions is above -MaxLoad {maxLoad}"));
            }
        }

        if (options.MaxReplicationLag is { } maxLag && await _replicas.OverLimitAsync(connection, maxLag, ct).ConfigureAwait(false) is { } lagging)
        {
            return (BackfillState.Throttled, lagging);
        }

        return (BackfillState.Running, null);
    }

    private BackfillStatus Status(BackfillState state, string? reason, BatchReport report) => new()
    {
        // Running below full speed because of the adaptive throttle shows as throttled, with why.
        State = state == BackfillState.Running && report.Throttle is not null ? BackfillState.Throttled : state,
        Reason = state == BackfillState.Running ? report.Throttle : reason,
        RowsPerSecond = report.RowsPerSecond,
        EtaSeconds = report.EtaSeconds,
        LastBatchAt = _lastBatchAt,
        LastBatchMilliseconds = _lastBatchAt is null ? null : report.LastBatch.TotalMilliseconds,
        BatchSize = report.BatchSize,
        At = DateTimeOffset.UtcNow,
    };

    private async Task SleepAsync(CancellationToken ct)
    {
        _slept = true;
        // A stop request (SIGTERM) ends a pause at once; Ctrl+C (ct) throws as everywhere else.
        using var either = CancellationTokenSource.CreateLinkedTokenSource(ct, _baseline.StopAfterBatch);
        try
        {
            await Task.Delay(PollInterval, either.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
        }
    }

    private static string Describe(BackfillControl control)
    {
        var parts = new List<string> { control.Paused ? "paused" : "not paused" };
        if (control.DelayMilliseconds is { } delay) parts.Add(string.Create(CultureInfo.InvariantCulture, $"delay {delay:0} ms"));
        if (control.BatchSize is { } size) parts.Add($"batch size {size}");
        if (control.TargetBatchTimeMilliseconds is { } target) parts.Add(string.Create(CultureInfo.InvariantCulture, $"target batch time {target:0} ms"));
        if (control.MaxLoad is { } load) parts.Add($"max load {load}");
        return string.Join(", ", parts);
    }
}
