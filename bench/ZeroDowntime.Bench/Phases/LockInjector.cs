using Npgsql;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Bench.Phases;

/// <summary>
/// While armed with a plan, puts a long transaction holding ACCESS SHARE (what any SELECT takes)
/// on the table (or the index: <see cref="LockHolder.AcquireReadingAsync"/>) right before each ACCESS EXCLUSIVE step starts, so every such step meets the
/// worst case a DDL tool sees in production: a lock it cannot get at once. The engine must wait
/// politely (lock_timeout, retry) instead of queueing the application behind it.
/// </summary>
public sealed class LockInjector
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly List<LockHolder> _holders = new();
    private PhasePlan? _plan;

    public LockInjector(BenchObserver observer, NpgsqlDataSource dataSource, TimeSpan holdFor)
    {
        _dataSource = dataSource;
        HoldFor = holdFor;
        observer.StepStarting += OnStepStarting;
    }

    public TimeSpan HoldFor { get; }

    /// <summary>Injects for the AE steps of this plan until <see cref="DisarmAsync"/>.</summary>
    public void Arm(PhasePlan plan)
    {
        lock (_holders)
        {
            _plan = plan;
        }
    }

    /// <summary>Stops injecting, waits for the holders to end, and says how many there were.</summary>
    public async Task<int> DisarmAsync()
    {
        List<LockHolder> holders;
        lock (_holders)
        {
            _plan = null;
            holders = _holders.ToList();
            _holders.Clear();
        }

        foreach (var holder in holders)
        {
            await holder.DisposeAsync().ConfigureAwait(false);
        }

        return holders.Count;
    }

    private void OnStepStarting(StepStart start)
    {
        DdlStep? step;
        lock (_holders)
        {
            step = _plan is { } plan && start.Index <= plan.Steps.Count ? plan.Steps[start.Index - 1] : null;
        }

        if (step is not { Lock: LockLevel.AccessExclusive })
        {
            return;
        }

        // Blocks the engine's thread on purpose: the step must not ask for its lock before the holder has it.
        var holder = LockHolder.AcquireReadingAsync(_dataSource, step.LockTarget, HoldFor).GetAwaiter().GetResult();
        lock (_holders)
        {
            _holders.Add(holder);
        }
    }
}
