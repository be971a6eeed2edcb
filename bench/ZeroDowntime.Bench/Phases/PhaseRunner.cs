using System.Diagnostics;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Bench.Phases;

/// <summary>
/// Runs one planned phase through the engine while measuring it: a window of the application's
/// statements, the engine's step reports, and optionally a lock holder injected before each
/// ACCESS EXCLUSIVE step.
/// </summary>
public sealed class PhaseRunner
{
    private readonly MigrationEngine _engine;
    private readonly BenchObserver _observer;
    private readonly WorkloadRecorder? _recorder;
    private readonly LockInjector? _injector;

    public PhaseRunner(MigrationEngine engine, BenchObserver observer, WorkloadRecorder? recorder, LockInjector? injector)
    {
        _engine = engine;
        _observer = observer;
        _recorder = recorder;
        _injector = injector;
    }

    public MigrationEngine Engine => _engine;

    public async Task<(ZeroDowntime.Engine.Migration Migration, PhaseResult Result)> RunAsync(string name, long rows, PhasePlan plan, bool injectLocks, CancellationToken ct)
    {
        _observer.DrainSteps();
        var window = _recorder?.BeginWindow(name);
        if (injectLocks)
        {
            (_injector ?? throw new InvalidOperationException("No lock injector was configured.")).Arm(plan);
        }

        var watch = Stopwatch.StartNew();
        ZeroDowntime.Engine.Migration migration;
        var injections = 0;
        try
        {
            migration = await _engine.RunAsync(plan, ct).ConfigureAwait(false);
        }
        finally
        {
            if (injectLocks)
            {
                injections = await _injector!.DisarmAsync().ConfigureAwait(false);
            }
        }

        var seconds = watch.Elapsed.TotalSeconds;
        var app = window?.End();
        var steps = _observer.DrainSteps()
            .Select(t => new StepReport(t.Title, LockOf(plan, t.Title), t.Attempts, t.LockHeldMs))
            .ToList();
        return (migration, new PhaseResult(name, rows, seconds, steps, injections, _engine.Options.LockTimeout.TotalMilliseconds, app));
    }

    private static string LockOf(PhasePlan plan, string title)
        => (plan.Steps.FirstOrDefault(s => s.Title == title)?.Lock ?? LockLevel.None).ToSqlName();
}
