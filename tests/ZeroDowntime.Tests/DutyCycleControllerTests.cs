using ZeroDowntime.Engine.Backfill.Throttle;

namespace ZeroDowntime.Tests;

/// <summary>
/// The throttle's decisions, fed the others' rates a pacer would measure: on a noisy load (a loss
/// must stand out of the noise, probes at one duty add up), and on a light load (below the busy
/// thresholds). A saturated application commits few transactions on a slow or overloaded
/// machine (1,400 tx/s on the bench's machine under a load average of 50, below the 1,000 tx/s and
/// 0.5 active sessions that make a server busy): it must be throttled when it loses to the
/// backfill, while an open loop below capacity, which does not lose, keeps full speed unprobed.
/// The end-to-end behaviour against a real server under load is BackfillThrottleTests'.
/// </summary>
public class DutyCycleControllerTests
{
    private static readonly ThrottleSettings Settings = ThrottleSettings.Default;

    /// <summary>A window of 3 s of a steady load (its halves differ by 1%).</summary>
    private static OthersActivity Rate(double transactionsPerSecond) => new(3, transactionsPerSecond, 0.1, 0.01);

    private static TimeSpan At(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void A_light_load_that_loses_to_the_backfill_is_probed_and_throttled_until_it_no_longer_loses()
    {
        var controller = new DutyCycleController(Settings);
        Assert.Equal(1, controller.Start(Rate(800), At(0)).Duty);

        // While the backfill works, the application commits 25% less than in the first look: probe.
        Assert.Null(controller.AfterWork(Rate(600), At(8)));
        var backOff = controller.AfterProbe(Rate(600), Rate(800), At(11));
        Assert.Equal(ThrottleAction.BackOff, backOff.Action);
        Assert.True(backOff.Duty < 1);

        // Still below the busy thresholds, but no longer idle to the controller: the duty holds or grows, it does not jump back to full speed.
        var next = controller.AfterWork(Rate(790), At(14));
        Assert.NotNull(next);
        Assert.NotEqual(ThrottleAction.Idle, next!.Action);
        Assert.True(next.Duty < 1);

        // Recovering step by step to full speed; a probe there that finds no loss makes it idle again.
        var duty = next.Duty;
        for (var t = 20.0; duty < 1 && t < 400; t += 10)
        {
            duty = controller.AfterProbe(Rate(800), Rate(800), At(t)).Duty;
        }

        Assert.Equal(1, duty);
        Assert.Equal(ThrottleAction.Idle, controller.AfterProbe(Rate(800), Rate(800), At(500)).Action);
        Assert.Equal(ThrottleAction.Idle, controller.AfterWork(Rate(800), At(503))!.Action);
    }

    [Fact]
    public void A_light_load_that_keeps_its_rate_is_left_at_full_speed_without_probes()
    {
        var controller = new DutyCycleController(Settings);
        controller.Start(Rate(800), At(0));
        for (var t = 3.0; t < 120; t += 3)
        {
            var decision = controller.AfterWork(Rate(790), At(t));
            Assert.NotNull(decision);
            Assert.Equal(ThrottleAction.Idle, decision!.Action);
            Assert.Equal(1, decision.Duty);
        }
    }

    [Fact]
    public void A_light_load_that_starts_after_the_first_look_is_probed()
    {
        var controller = new DutyCycleController(Settings);
        controller.Start(Rate(40), At(0));
        Assert.Null(controller.AfterWork(Rate(180), At(8)));
        Assert.Equal(ThrottleAction.BackOff, controller.AfterProbe(Rate(180), Rate(260), At(11)).Action);
    }

    [Fact]
    public void A_server_below_the_light_load_floor_is_idle_whatever_its_rate_does()
    {
        var controller = new DutyCycleController(Settings);
        controller.Start(Rate(60), At(0));
        Assert.Equal(ThrottleAction.Idle, controller.AfterWork(Rate(20), At(10))!.Action);
    }

    [Fact]
    public void After_a_burst_the_duty_grows_back_by_doubling_while_a_load_that_stays_gets_additive_steps()
    {
        var controller = new DutyCycleController(Settings);
        Assert.Equal(Settings.StartDutyWhenBusy, controller.Start(Rate(1500), At(0)).Duty);

        // The application alone does not lose to us: slow start to full speed.
        while (controller.Duty < 1)
        {
            Assert.Equal(ThrottleAction.Recover, controller.AfterWork(Rate(1495), At(3))!.Action);
        }

        // A burst: four times the load, which loses half of its rate to us. Back off.
        Assert.Null(controller.AfterWork(Rate(6000), At(6)));
        var backOff = controller.AfterProbe(Rate(3000), Rate(6000), At(9));
        Assert.Equal(ThrottleAction.BackOff, backOff.Action);
        Assert.True(backOff.Duty <= 0.5);

        // The same load still there and unharmed at this duty: additive steps (it was harmed at more).
        var held = controller.AfterProbe(Rate(5950), Rate(6000), At(15));
        Assert.Equal(ThrottleAction.Recover, held.Action);
        Assert.Equal(backOff.Duty + Settings.RecoverStep, held.Duty, 6);

        // The burst is over: the application alone again. The first probe sees the load change
        // (its noise is learnt afresh: one window is not enough to judge, so it holds); then the
        // duty doubles per probe, not one step of RecoverStep per probe.
        Assert.Null(controller.AfterWork(Rate(1495), At(21)));
        var first = controller.AfterProbe(Rate(1495), Rate(1500), At(24));
        Assert.Equal(ThrottleAction.Hold, first.Action);
        var second = controller.AfterProbe(Rate(1495), Rate(1500), At(30));
        Assert.Equal(Math.Min(1, held.Duty * 2), second.Duty, 6);
        var third = controller.AfterProbe(Rate(1495), Rate(1500), At(36));
        Assert.Equal(Math.Min(1, held.Duty * 4), third.Duty, 6);
    }

    /// <summary>A window of 3 s whose halves differ by <paramref name="spread"/> of its rate: that much noise.</summary>
    private static OthersActivity Noisy(double transactionsPerSecond, double spread) => new(3, transactionsPerSecond, 0.1, spread);

    [Fact]
    public void On_a_noisy_load_a_loss_within_the_noise_holds_and_probes_at_the_same_duty_add_up_until_it_stands_out()
    {
        var controller = new DutyCycleController(Settings with { StartDutyWhenBusy = 1 });
        controller.Start(Noisy(5000, 0.3), At(0));
        var decisions = new List<ThrottleDecision>();
        for (var t = 10.0; decisions.Count < 20 && (decisions.Count == 0 || decisions[^1].Action != ThrottleAction.BackOff); t += 10)
        {
            // The same 15% loss every time, on windows whose halves differ by 30% (one probe's error ~24%).
            controller.AfterWork(Noisy(4250, 0.3), At(t));
            decisions.Add(controller.AfterProbe(Noisy(4250, 0.3), Noisy(5000, 0.3), At(t + 3)));
        }

        Assert.Equal(ThrottleAction.Hold, decisions[0].Action);
        Assert.True(decisions[0].HarmError > 0.15, decisions[0].ToString());
        Assert.Equal(ThrottleAction.BackOff, decisions[^1].Action);
        Assert.True(decisions.Count is > 2 and < 10, string.Join("; ", decisions));
        Assert.Equal(decisions.Count, decisions[^1].Probes);
        Assert.Equal(0.15, decisions[^1].Harm!.Value, 6);
    }

    [Fact]
    public void On_a_quiet_load_the_same_loss_backs_off_at_the_first_probe()
    {
        var controller = new DutyCycleController(Settings with { StartDutyWhenBusy = 1 });
        controller.Start(Noisy(5000, 0.01), At(0));
        Assert.Null(controller.AfterWork(Noisy(4250, 0.01), At(10)));
        var decision = controller.AfterProbe(Noisy(4250, 0.01), Noisy(5000, 0.01), At(13));
        Assert.Equal(ThrottleAction.BackOff, decision.Action);
        Assert.True(decision.HarmError < 0.02, decision.ToString());
    }

    [Fact]
    public void On_a_noisy_load_a_gain_within_the_noise_does_not_recover_a_throttled_backfill()
    {
        var noisy = new DutyCycleController(Settings);
        Assert.Equal(Settings.StartDutyWhenBusy, noisy.Start(Noisy(5000, 0.3), At(0)).Duty);
        var held = noisy.AfterProbe(Noisy(5100, 0.3), Noisy(5000, 0.3), At(10));
        Assert.Equal(ThrottleAction.Hold, held.Action);
        Assert.Equal(Settings.StartDutyWhenBusy, held.Duty);

        var quiet = new DutyCycleController(Settings);
        quiet.Start(Noisy(5000, 0.01), At(0));
        Assert.Equal(ThrottleAction.Recover, quiet.AfterProbe(Noisy(5100, 0.01), Noisy(5000, 0.01), At(10)).Action);
    }

    [Fact]
    public void A_windows_halves_spread_is_read_from_its_counters()
    {
        // 100 transactions a second for 1 s, then 50 a second for 1 s, read every 0.2 s.
        var points = Enumerable.Range(0, 11)
            .Select(i => new OthersPoint(TimeSpan.FromSeconds(i * 0.2), i <= 5 ? i * 20.0 : 100 + ((i - 5) * 10.0), null))
            .ToList();
        var window = OthersActivity.Fit(points);
        Assert.Equal(2, window.Seconds, 6);
        Assert.InRange(window.HalvesSpread!.Value, 0.6, 0.75);
        Assert.Null(OthersActivity.Fit(points.Take(4).ToList()).HalvesSpread);
    }

    [Fact]
    public void A_gain_beyond_the_noise_is_a_load_change_not_evidence_of_no_harm()
    {
        var controller = new DutyCycleController(Settings);
        controller.Start(Noisy(5000, 0.05), At(0));

        // The others 40% faster while we worked than while we paused (one probe's error ~4%): their load changed.
        var changed = controller.AfterProbe(Noisy(7000, 0.05), Noisy(5000, 0.05), At(10));
        Assert.Equal(ThrottleAction.Hold, changed.Action);
        Assert.Equal(Settings.StartDutyWhenBusy, changed.Duty);

        // Unharmed at the next probe: that is evidence, and it recovers.
        Assert.Equal(ThrottleAction.Recover, controller.AfterProbe(Noisy(5000, 0.05), Noisy(5000, 0.05), At(20)).Action);
    }

    [Fact]
    public void A_drop_of_the_load_within_the_noise_is_not_the_end_of_the_burst()
    {
        // Harm seen at 5,000 tx/s on windows whose halves differ by 30% (a probe's error ~21%).
        var controller = new DutyCycleController(Settings with { StartDutyWhenBusy = 1 });
        controller.Start(Noisy(5000, 0.3), At(0));
        Assert.Equal(ThrottleAction.BackOff, controller.AfterProbe(Noisy(2000, 0.3), Noisy(5000, 0.3), At(10)).Action);
        Assert.Equal(1, controller.AfterProbe(Noisy(4500, 0.3), Noisy(5000, 0.3), At(20)).Probes);

        // The load 15% lower at the next probe: within the noise, so the same load, and the
        // probes at this duty keep adding up (a burst's end would have cleared them).
        Assert.Equal(2, controller.AfterProbe(Noisy(3825, 0.3), Noisy(4250, 0.3), At(30)).Probes);
    }

    [Fact]
    public void A_higher_MaxImpact_holds_where_the_default_backs_off()
    {
        // A quiet load losing 10% to a backfill at full speed: over the default 6%, under 15%.
        foreach (var (settings, expected) in new[] { (Settings, ThrottleAction.BackOff), (Settings.WithHarmLimit(0.15), ThrottleAction.Hold) })
        {
            var controller = new DutyCycleController(settings with { StartDutyWhenBusy = 1 });
            controller.Start(Noisy(5000, 0.01), At(0));
            Assert.Equal(expected, controller.AfterProbe(Noisy(4500, 0.01), Noisy(5000, 0.01), At(10)).Action);
        }

        Assert.Equal(0.075, Settings.WithHarmLimit(0.15).RecoverBelow, 6);
    }

    [Fact]
    public void At_full_speed_a_small_loss_within_the_noise_moves_the_probes_apart()
    {
        var controller = new DutyCycleController(Settings with { StartDutyWhenBusy = 1 });
        controller.Start(Noisy(5000, 0.3), At(0));

        // No harm to speak of, but too noisy to be sure of it: nothing to decide at full speed, so
        // the next probe comes after 12 s, not after 6.
        Assert.Equal(ThrottleAction.Hold, controller.AfterProbe(Noisy(5050, 0.3), Noisy(5000, 0.3), At(10)).Action);
        Assert.NotNull(controller.AfterWork(Noisy(5050, 0.3), At(17)));
        Assert.Null(controller.AfterWork(Noisy(5050, 0.3), At(23)));
    }
    [Fact]
    public void Consecutive_working_windows_that_agree_replace_the_noise_of_the_windows_halves()
    {
        // Halves that differ by 30% (counters published in steps), but working windows that agree
        // within 2%: after three such pairs the noise is theirs, and a 15% loss backs off at the
        // first probe instead of waiting for several.
        var controller = new DutyCycleController(Settings with { StartDutyWhenBusy = 1 });
        controller.Start(Noisy(5000, 0.3), At(0));
        var rates = new[] { 4250.0, 4300, 4220 };
        for (var i = 0; i < rates.Length; i++)
        {
            // A 15% loss against the first look, within the halves' noise (~21%): not worth a probe yet.
            Assert.Equal(ThrottleAction.Hold, controller.AfterWork(Noisy(rates[i], 0.3), At(1 + i))!.Action);
        }

        // The third pair: the same loss now stands out of the noise, so a probe confirms it.
        Assert.Null(controller.AfterWork(Noisy(4260, 0.3), At(4)));

        var decision = controller.AfterProbe(Noisy(4250, 0.3), Noisy(5000, 0.3), At(8));
        Assert.Equal(ThrottleAction.BackOff, decision.Action);
        Assert.Equal(1, decision.Probes);
        Assert.True(decision.HarmError < 0.05, decision.ToString());
    }

    [Fact]
    public void The_noise_is_learnt_again_when_the_load_changes()
    {
        var noise = new RateNoise();
        noise.ObservePaused(Noisy(6000, 1.2));
        Assert.True(noise.HarmSigma(Rate(6000), Rate(6000)) > 0.5);

        // Half the rate or less: another load, whose noise is its own; one window's halves say
        // little, so until a second the error is at least the prior's (10% per 2 s window).
        noise.ObservePaused(Noisy(500, 0.05));
        Assert.InRange(noise.HarmSigma(Rate(500), Rate(500)), 0.11, 0.13);
        noise.ObservePaused(Noisy(500, 0.05));
        Assert.True(noise.HarmSigma(Rate(500), Rate(500)) < 0.05);

        // Two working windows at one duty, one of them straddling a burst's start: not a noise sample.
        noise.ObserveWorking(Noisy(500, 0.05), 1);
        noise.ObserveWorking(Noisy(3000, 0.05), 1);
        noise.ObservePaused(Noisy(500, 0.05));
        noise.ObservePaused(Noisy(500, 0.05));
        Assert.True(noise.HarmSigma(Rate(500), Rate(500)) < 0.05);
        Assert.True(RateNoise.IsLoadChange(500, 1001) && RateNoise.IsLoadChange(1001, 500) && !RateNoise.IsLoadChange(500, 999));
    }

    [Fact]
    public void After_a_noisy_burst_a_light_load_gets_full_speed_back()
    {
        // The demo: a light open loop, a 10 s burst that saturates the server, the light loop again.
        var controller = new DutyCycleController(Settings with { StartDutyWhenBusy = 1 });
        Assert.Equal(1, controller.Start(Noisy(500, 0.1), At(0)).Duty);
        Assert.Null(controller.AfterWork(Noisy(6000, 0.2), At(3)));
        Assert.Equal(ThrottleAction.BackOff, controller.AfterProbe(Noisy(3000, 0.2), Noisy(6000, 0.2), At(6)).Action);

        // The window in which the burst ends: its halves differ by 150%.
        controller.AfterWork(Noisy(2000, 1.5), At(10));

        // The light load alone again, 11% slower while we worked, within its own noise (a probe's
        // error ~35%): not a light load that loses to us, so full speed, and no probes while it holds.
        var after = controller.AfterProbe(Noisy(445, 0.5), Noisy(500, 0.5), At(13));
        Assert.Equal(ThrottleAction.Idle, after.Action);
        Assert.Equal(1, after.Duty);
        Assert.Equal(ThrottleAction.Idle, controller.AfterWork(Noisy(495, 0.5), At(17))!.Action);
    }

    [Fact]
    public void The_end_of_a_burst_is_seen_through_any_noise_when_the_load_halves()
    {
        var controller = new DutyCycleController(Settings with { StartDutyWhenBusy = 1 });
        // A burst as noisy as it is heavy (a probe's error ~57%), losing 92% to us: back off.
        controller.Start(Noisy(6000, 0.8), At(0));
        var backOff = controller.AfterProbe(Noisy(500, 0.8), Noisy(6000, 0.8), At(10));
        Assert.Equal(ThrottleAction.BackOff, backOff.Action);

        // A third of the load, still busy, steady and unharmed: the burst is over (a drop the
        // burst's noise could not tell apart, but no noise halves a load), so once the new load's
        // noise is known (a second window) the duty doubles.
        Assert.Equal(ThrottleAction.Hold, controller.AfterProbe(Noisy(2000, 0.05), Noisy(2000, 0.05), At(20)).Action);
        var recovered = controller.AfterProbe(Noisy(2000, 0.05), Noisy(2000, 0.05), At(30));
        Assert.Equal(ThrottleAction.Recover, recovered.Action);
        Assert.Equal(Math.Min(1, backOff.Duty * 2), recovered.Duty, 6);
    }
}
