using Npgsql;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>Settings every command shares.</summary>
public sealed record CommonOptions
{
    public string? Connection { get; init; }

    public bool ForceThrowaway { get; init; }

    /// <summary>The engine's lock_timeout for DDL (its default unless given).</summary>
    public TimeSpan LockTimeout { get; init; } = new EngineOptions().LockTimeout;

    /// <summary>How long an injected lock holder keeps its transaction open.</summary>
    public TimeSpan LockHold { get; init; } = TimeSpan.FromSeconds(1.5);

    /// <summary>Where the engine's verbose messages go (null: nowhere).</summary>
    public string? LogFile { get; init; }
}

/// <summary>
/// Everything a scenario needs, wired once: the server, the engine (with the bench's observer and
/// its own ledger schema), the application's recorder and connection pools, the lock injector.
/// </summary>
public sealed class BenchContext : IAsyncDisposable
{
    private readonly StreamWriter? _log;

    private BenchContext(BenchServer server, ConsoleUi ui, CommonOptions options, StreamWriter? log, CancellationToken ct)
    {
        Server = server;
        Ui = ui;
        Options = options;
        _log = log;
        Cancellation = ct;
        Observer = new BenchObserver(log);
        EngineOptions = new EngineOptions { LedgerSchema = BenchServer.LedgerSchema, LockTimeout = options.LockTimeout };
        Engine = new MigrationEngine(server.Target, EngineOptions, Observer);
        AppSource = server.CreateDataSource("zdt-bench-app", maxPoolSize: 100);
        HolderSource = server.CreateDataSource("zdt-bench-lock-holder");
        Injector = new LockInjector(Observer, HolderSource, options.LockHold);
    }

    public BenchServer Server { get; }

    public ConsoleUi Ui { get; }

    public CommonOptions Options { get; }

    public CancellationToken Cancellation { get; }

    public BenchObserver Observer { get; }

    public EngineOptions EngineOptions { get; }

    public MigrationEngine Engine { get; }

    /// <summary>The simulated application's connections (named zdt-bench-app in pg_stat_activity).</summary>
    public NpgsqlDataSource AppSource { get; }

    public NpgsqlDataSource HolderSource { get; }

    public LockInjector Injector { get; }

    public NpgsqlDataSource Admin => Server.Admin;

    public static async Task<BenchContext> CreateAsync(CommonOptions options, ConsoleUi ui, CancellationToken ct)
    {
        StreamWriter? log = null;
        if (options.LogFile is { } path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            log = new StreamWriter(path, append: false) { AutoFlush = true };
        }

        try
        {
            var server = await BenchServer.StartAsync(options.Connection, options.ForceThrowaway, ct).ConfigureAwait(false);
            return new BenchContext(server, ui, options, log, ct);
        }
        catch
        {
            if (log is not null)
            {
                await log.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>A phase runner measuring into this recorder (the application currently running).</summary>
    public PhaseRunner Phases(WorkloadRecorder? recorder) => new(Engine, Observer, recorder, Injector);

    public async Task<OrdersTable> CreateOrdersAsync(string name, long rows)
    {
        var started = DateTime.UtcNow;
        long done = 0;
        await using (Ui.Status(() => $"creating {BenchServer.DataSchema}.{name}: {Fmt.Count(Interlocked.Read(ref done))} of {Fmt.Count(rows)} rows loaded"))
        {
            var table = await OrdersTable.CreateAsync(Admin, BenchServer.DataSchema, name, rows, n => Interlocked.Exchange(ref done, n), Cancellation).ConfigureAwait(false);
            Ui.Line($"[setup] {table.Qualified}: {Fmt.Count(rows)} rows with keys and an index on address, vacuumed ({Fmt.Seconds((DateTime.UtcNow - started).TotalSeconds)})");
            return table;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync().ConfigureAwait(false);
        if (_log is not null)
        {
            await _log.DisposeAsync().ConfigureAwait(false);
        }
    }
}
