namespace ZeroDowntime.Engine.Backfill.Throttle;

/// <summary>
/// Decides what share of the time the backfill works (its duty cycle: a batch, then a sleep), from
/// the rest of the server's rate while the backfill works compared with its rate while the backfill
/// pauses (a probe). AIMD, as TCP does with a shared link: multiplicative back-off when the others
/// lose more than <see cref="ThrottleSettings.HarmLimit"/>, additive recovery when they lose
/// (almost) nothing, after a slow start (doubling) until the first harm, and again once the load
/// that caused the harm has gone. On a noisy server one probe proves little either way: the loss
/// must stand out of the windows' own noise (<see cref="RateNoise"/>), and probes at the same duty
/// add up (<see cref="HarmEvidence"/>) until it does, or until it is clearly below the limit. No
/// probes while nobody else works (an idle server keeps full speed), and probes further and further
/// apart while they find no harm (an application with headroom, such as an open loop below
/// capacity, keeps full speed too). Pure logic: the pacer measures, this decides.
/// </summary>
internal sealed class DutyCycleController
{
    private readonly ThrottleSettings _settings;
    private readonly RateNoise _noise = new();
    private readonly HarmEvidence _evidence;
    private double _duty = 1;
    private OthersActivity? _baseline;
    private TimeSpan _baselineAt;
    private TimeSpan _probeInterval;
    private bool _harmSeen;

    // The others' rate without us when harm was last seen: the load that made the backfill back off.
    private double _harmedLoad;

    // The last probe (or the first look), kept through idle windows: a light load is judged against it.
    private OthersActivity? _lastPause;
    private TimeSpan _lastPauseAt;
    private TimeSpan _lightProbeInterval;

    // A load below the busy thresholds that lost to the backfill: it is throttled as a busy one until a probe finds it unharmed at full speed.
    private bool _lightLoadHurt;

    public DutyCycleController(ThrottleSettings settings)
    {
        _settings = settings;
        _evidence = new HarmEvidence(_noise);
        _probeInterval = settings.FirstProbeInterval;
        _lightProbeInterval = settings.FirstProbeInterval;
    }

    /// <summary>The share of time the backfill works, in (0, 1].</summary>
    public double Duty
    {
        get => _duty;
        private set
        {
            if (value != _duty)
            {
                // What the probes said was about the old duty.
                _evidence.Clear();
                _duty = value;
            }
        }
    }

    /// <summary>The first look, taken before the first batch (a free pause: nothing of ours ran yet).</summary>
    public ThrottleDecision Start(OthersActivity paused, TimeSpan now)
    {
        _baseline = paused;
        _baselineAt = now;
        _lastPause = paused;
        _lastPauseAt = now;
        _noise.ObservePaused(paused);
        var busy = IsBusy(paused);
        Duty = busy ? _settings.StartDutyWhenBusy : 1;
        return new ThrottleDecision(now, ThrottleAction.Start, Duty, null, null, paused.TransactionsPerSecond, paused.ActiveSessions, false);
    }

    /// <summary>After a window of work: a decision, or null when a probe must be taken first.</summary>
    public ThrottleDecision? AfterWork(OthersActivity working, TimeSpan now)
    {
        _noise.ObserveWorking(working, Duty);
        if (!IsBusy(working) && !_lightLoadHurt)
        {
            if (LightLoadLoses(working, now))
            {
                // Few transactions, but fewer than without us: a saturated application of light
                // throughput (a slow or overloaded machine). Confirm with a probe.
                return null;
            }

            // Nobody to hurt. The next busy window probes: the old baseline says nothing of a new load.
            Duty = 1;
            _baseline = null;
            _probeInterval = _settings.FirstProbeInterval;
            return Decide(now, ThrottleAction.Idle, null, working, null, false);
        }

        if (_baseline is not { } baseline
            || now - _baselineAt >= _probeInterval
            || working.TransactionsPerSecond > baseline.TransactionsPerSecond * _settings.LoadChange)
        {
            return null;
        }

        var harm = Harm(working, baseline);
        var sigma = _noise.HarmSigma(working, baseline);
        if (harm > _settings.HarmLimit && harm > sigma)
        {
            // Against an older pause: the application's own load may have dropped. Confirm with a
            // probe before slowing down (a loss within the noise is not worth a probe's pause).
            return null;
        }

        if (harm < _settings.RecoverBelow && harm + (_settings.NoHarmConfidence * sigma) < _settings.HarmLimit && Duty < 1)
        {
            Recover();
            return Decide(now, ThrottleAction.Recover, harm, working, baseline, false);
        }

        return Decide(now, ThrottleAction.Hold, harm, working, baseline, false);
    }

    /// <summary>After a probe taken right after a window of work: the decision on that pair.</summary>
    public ThrottleDecision AfterProbe(OthersActivity working, OthersActivity paused, TimeSpan now)
    {
        _baseline = paused;
        _baselineAt = now;
        _lastPause = paused;
        _lastPauseAt = now;
        _noise.ObservePaused(paused);
        var harm = Harm(working, paused);
        var sigma = _noise.HarmSigma(working, paused);
        var loadDrop = _harmSeen && _harmedLoad > 0 ? 1 - (paused.TransactionsPerSecond / _harmedLoad) : 0;
        if (loadDrop > 1 - (1 / _settings.LoadChange)
            && (loadDrop > _settings.HarmConfidence * _noise.HarmSigma(paused, paused) || RateNoise.IsLoadChange(_harmedLoad, paused.TransactionsPerSecond)))
        {
            // The load that made us back off has gone (a burst is over), by more than the noise
            // moves it (or by more than half, which no noise explains): what holds the duty down
            // was learnt against a load that no longer exists, so grow it back by slow start
            // (doubling) instead of additive steps, which took 15-20 s after a 10 s burst.
            _harmSeen = false;
            _evidence.Clear();
        }

        if (!IsBusy(working) && !IsBusy(paused))
        {
            // A light load loses to us when its loss is over the limit and stands out of the
            // noise, as a busy load's must: one noisy probe after the demo's burst (11% ± 86%)
            // held the backfill at 25% for the rest of its run.
            var light = paused.TransactionsPerSecond >= _settings.LightLoadTransactionsPerSecond;
            var loses = harm > _settings.HarmLimit && harm > _settings.HarmConfidence * sigma;
            if (!light || (!loses && (!_lightLoadHurt || Duty >= 1)))
            {
                // Idle, or a light load that does not lose to us: full speed, and such probes further apart.
                _lightProbeInterval = light ? TimeSpan.FromTicks(Math.Min(_settings.MaxProbeInterval.Ticks, _lightProbeInterval.Ticks * 2)) : _settings.FirstProbeInterval;
                _lightLoadHurt = false;
                Duty = 1;
                return Decide(now, ThrottleAction.Idle, null, working, paused, true);
            }

            // A light load that loses to us is throttled as a busy one (below) until it no longer does at full speed.
            _lightLoadHurt = true;
        }

        if (harm < 1 - _settings.LoadChange && harm < -_settings.HarmConfidence * sigma)
        {
            // The others ran faster while we worked than while we paused, by more than a load
            // change and more than the noise: their load changed between the two windows (the
            // saturated bench "recovered" on a -43% loss), which says nothing about us. Not
            // evidence either way; look again soon.
            _probeInterval = _settings.FirstProbeInterval;
            return Decide(now, ThrottleAction.Hold, harm, working, paused, true, sigma, 1);
        }

        _evidence.Add(harm, working, paused);
        var loss = _evidence.Mean;
        var (error, probes) = (_evidence.StandardError, _evidence.Count);
        if (_evidence.ShowsHarmAbove(_settings.HarmLimit, _settings.HarmConfidence))
        {
            // Aim at a loss of RecoverBelow assuming the loss is proportional to the duty cycle,
            // but never less than a quarter nor more than 0.7 of the current duty at once.
            Duty = Math.Max(_settings.MinDuty, Duty * Math.Clamp(_settings.RecoverBelow / loss, 0.25, 0.7));
            _probeInterval = _settings.FirstProbeInterval;
            _lightProbeInterval = _settings.FirstProbeInterval;
            _harmSeen = true;
            _harmedLoad = paused.TransactionsPerSecond;
            return Decide(now, ThrottleAction.BackOff, loss, working, paused, true, error, probes);
        }

        var harmless = loss < _settings.RecoverBelow && _evidence.ShowsNoHarmAbove(_settings.HarmLimit, _settings.NoHarmConfidence);
        // A loss the noise does not let us judge yet, where the judgement would change the duty:
        // probe again soon, and the probes add up. At full speed a small loss changes nothing
        // (there is nothing to recover), so the probes move apart as they always did: probing
        // every 6 s there cost a partitioned backfill under an open loop a third of its time.
        var undecided = !harmless && (loss > _settings.HarmLimit || (loss < _settings.RecoverBelow && Duty < 1));

        _probeInterval = undecided
            ? _settings.FirstProbeInterval
            : TimeSpan.FromTicks(Math.Min(_settings.MaxProbeInterval.Ticks, _probeInterval.Ticks * 2));
        if (harmless && Duty < 1)
        {
            Recover();
            return Decide(now, ThrottleAction.Recover, loss, working, paused, true, error, probes);
        }

        return Decide(now, ThrottleAction.Hold, loss, working, paused, true, error, probes);
    }

    /// <summary>Slow start (doubling) until the first harm, then additive increase.</summary>
    private void Recover() => Duty = Math.Min(1, _harmSeen ? Duty + _settings.RecoverStep : Duty * 2);

    /// <summary>
    /// A light load to probe: its rate fell under us against the last pause, or it is new (it rose
    /// past the last pause's, which then says nothing of it: a load that started after the first look).
    /// </summary>
    private bool LightLoadLoses(OthersActivity working, TimeSpan now)
    {
        if (_lastPause is not { } pause || now - _lastPauseAt < _lightProbeInterval)
        {
            return false;
        }

        var newLoad = working.TransactionsPerSecond >= _settings.LightLoadTransactionsPerSecond
            && working.TransactionsPerSecond > pause.TransactionsPerSecond * _settings.LoadChange;
        return newLoad || (pause.TransactionsPerSecond >= _settings.LightLoadTransactionsPerSecond && Harm(working, pause) > _settings.HarmLimit);
    }

    private bool IsBusy(OthersActivity activity)
        => activity.ActiveSessions >= _settings.BusyActiveSessions || activity.TransactionsPerSecond >= _settings.BusyTransactionsPerSecond;

    private static double Harm(OthersActivity working, OthersActivity paused)
        => paused.TransactionsPerSecond > 0 ? 1 - (working.TransactionsPerSecond / paused.TransactionsPerSecond) : 0;

    private ThrottleDecision Decide(TimeSpan now, ThrottleAction action, double? harm, OthersActivity working, OthersActivity? paused, bool probed, double? harmError = null, int probes = 0)
        => new(now, action, Duty, harm, working.TransactionsPerSecond, paused?.TransactionsPerSecond, working.ActiveSessions, probed, harmError, probes);
}
