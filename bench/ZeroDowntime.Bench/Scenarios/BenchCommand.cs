using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using ZeroDowntime.Bench.Cli;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Reporting;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine.Backfill;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>What the bench command measures and where it writes.</summary>
public sealed record BenchOptions
{
    public static readonly string[] ScenarioNames = ["backfill", "parity", "throttle", "ddl", "view", "trigger", "typechange", "saturated", "partitioned"];

    /// <summary>Scenarios that write results files of their own, not NAME.md.</summary>
    public static readonly string[] OwnFileScenarios = ["typechange", "saturated", "partitioned"];

    public long Rows { get; init; } = 1_000_000;

    public string Name { get; init; } = "rows-1000000";

    /// <summary>The length of each measured application window (baseline, each throttle setting).</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(10);

    public WorkloadOptions Workload { get; init; } = new() { Connections = 4, Rate = 800 };

    /// <summary>Table sizes the DDL phases are measured at.</summary>
    public IReadOnlyList<long> DdlRows { get; init; } = [100_000, 1_000_000];

    public IReadOnlyList<long> ViewRows { get; init; } = [10_000, 1_000_000];

    /// <summary>Rows of the two tables of the trigger-cost measurement (its cost per write does not depend on the size).</summary>
    public long TriggerRows { get; init; } = 200_000;

    public int TriggerRounds { get; init; } = 3;

    /// <summary>The saturated scenario's closed-loop clients; null: as many as saturate the server (found by doubling).</summary>
    public int? Clients { get; init; }

    /// <summary>The -MaxLoad setting the saturated scenario measures.</summary>
    public int MaxLoad { get; init; } = 2;

    /// <summary>How long the saturated scenario lets the default backfill run to reach the end.</summary>
    public TimeSpan DefaultLimit { get; init; } = TimeSpan.FromMinutes(5);

    public TimeSpan TriggerRound { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>The partitioned scenario's range partitions (besides its default partition).</summary>
    public int Partitions { get; init; } = 24;

    public IReadOnlySet<string> Scenarios { get; init; } = new HashSet<string>(ScenarioNames);

    public string? ResultsDirectory { get; init; }

    /// <summary>Free text added to the results' notes (e.g. what was special about the engine build).</summary>
    public string? Note { get; init; }

    /// <summary>The settings of the application-during-backfill curve, gentlest first. The engine's defaults have no Delay, so they are its full speed.</summary>
    public IReadOnlyList<ThrottleSetting> Throttles { get; init; } =
    [
        new("background", 20, 100),
        new("gentle", 50, 50),
        new(DefaultsLabel, new BackfillOptions().TargetBatchTime.TotalMilliseconds, new BackfillOptions().Delay.TotalMilliseconds, Adaptive: true),
        new(FullSpeedLabel, new BackfillOptions().TargetBatchTime.TotalMilliseconds, 0),
        new("large batches", 500, 0),
    ];

    public const string DefaultsLabel = "engine defaults (adaptive throttle)";

    /// <summary>The same batches with the throttle off (-TargetBatchTime 100ms): the backfill's full speed.</summary>
    public const string FullSpeedLabel = "full speed (throttle off)";

    public static BenchOptions From(CommandLine cl)
    {
        var rows = cl.Long("rows", 1_000_000);
        if (rows < 1_000)
        {
            throw new UsageException("--rows must be at least 1000.");
        }

        var only = cl.String("only");
        var skip = cl.String("skip");
        var scenarios = new HashSet<string>(only is null ? ScenarioNames : Split(only), StringComparer.Ordinal);
        if (skip is not null)
        {
            scenarios.ExceptWith(Split(skip));
        }

        var unknown = scenarios.Except(ScenarioNames).ToList();
        if (unknown.Count > 0)
        {
            throw new UsageException($"Unknown scenario(s): {string.Join(", ", unknown)}. Known: {string.Join(", ", ScenarioNames)}.");
        }

        return new BenchOptions
        {
            Rows = rows,
            Name = cl.String("name") ?? $"rows-{rows}",
            Window = TimeSpan.FromSeconds(cl.Double("window", 10)),
            Workload = new WorkloadOptions { Connections = (int)cl.Long("connections", 4), Rate = cl.Double("rate", 800) is > 0 and var rate ? rate : null },
            DdlRows = Sizes(cl, "ddl-rows", [Math.Max(10_000, rows / 10), rows]),
            ViewRows = Sizes(cl, "view-rows", [10_000, rows]),
            TriggerRows = Math.Min(rows, cl.Long("trigger-rows", 200_000)),
            Clients = cl.Long("clients", 0) is > 0 and var clients ? (int)clients : null,
            MaxLoad = (int)cl.Long("max-load", 2),
            DefaultLimit = TimeSpan.FromSeconds(cl.Double("default-limit", 300)),
            Partitions = cl.Long("partitions", 24) is >= 1 and <= 1000 and var partitions ? (int)partitions : throw new UsageException("--partitions must be between 1 and 1000."),
            Scenarios = scenarios,
            ResultsDirectory = cl.String("results-dir"),
            Note = cl.String("note"),
        };

        static IEnumerable<string> Split(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static IReadOnlyList<long> Sizes(CommandLine cl, string name, long[] fallback)
    {
        var text = cl.String(name);
        if (text is null)
        {
            return fallback.Distinct().Order().ToList();
        }

        return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(part => CommandLine.Parse(["x", "--n", part]).Long("n", 0))
            .Where(n => n >= 1_000)
            .Distinct()
            .Order()
            .ToList();
    }
}

/// <summary>
/// Runs the selected scenarios in one go against one server, then writes bench/results/NAME.md
/// and NAME.json. Scenarios are independent (each creates and drops its own tables), so any
/// subset can run; every ratio is taken within this run.
/// </summary>
public sealed class BenchCommand
{
    private readonly BenchContext _ctx;
    private readonly BenchOptions _options;
    private readonly string[] _args;

    public BenchCommand(BenchContext ctx, BenchOptions options, string[] args)
    {
        _ctx = ctx;
        _options = options;
        _args = args;
    }

    public async Task<int> RunAsync()
    {
        var ct = _ctx.Cancellation;
        var started = DateTimeOffset.UtcNow;
        var watch = Stopwatch.StartNew();
        var ui = _ctx.Ui;
        ui.Line($"ZeroDowntime bench '{_options.Name}': {Fmt.Count(_options.Rows)} rows; scenarios: {string.Join(", ", BenchOptions.ScenarioNames.Where(_options.Scenarios.Contains))}");
        ui.Line($"[server] {_ctx.Server.Description}");
        await _ctx.Server.ResetSchemasAsync(ct);

        var results = new BenchResults { Run = RunInfo(started, 0) };
        if (Wants("backfill") || Wants("parity"))
        {
            var (throughput, parity) = await new BackfillThroughputScenario(_ctx, _options.Rows, new BackfillOptions()).RunAsync(Wants("parity"));
            results.BackfillThroughput = Wants("backfill") ? throughput : null;
            results.ParityRate = parity;
        }

        if (Wants("trigger"))
        {
            results.TriggerCost = await new TriggerCostScenario(_ctx, _options.TriggerRows, _options.Workload.Connections, _options.TriggerRound, _options.TriggerRounds).RunAsync();
        }

        if (Wants("throttle") || Wants("ddl"))
        {
            // The throttle curve runs on the full-size table, inside its rename's lifecycle.
            var sizes = Wants("ddl") ? _options.DdlRows.ToList() : new List<long>();
            if (Wants("throttle") && !sizes.Contains(_options.Rows))
            {
                sizes.Add(_options.Rows);
            }

            foreach (var rows in sizes.Order())
            {
                var throttles = Wants("throttle") && rows == _options.Rows ? _options.Throttles : null;
                var window = rows == _options.Rows ? _options.Window : _options.Window / 2;
                var (ddl, throttle) = await new RenameUnderLoadScenario(_ctx, rows, _options.Workload, window, throttles).RunAsync();
                if (Wants("ddl"))
                {
                    results.Ddl.Add(ddl);
                }

                results.Throttle ??= throttle;
            }
        }

        if (Wants("view"))
        {
            results.ViewStrategy = await new ViewStrategyScenario(_ctx, _options.ViewRows).RunAsync();
        }

        if (Wants("typechange"))
        {
            // Writes bench/results/type-change-rows-N.* of its own.
            await new TypeChangeScenario(_ctx, _options.Rows, _options.Workload, _options.Window, Results).RunAsync();
        }

        if (Wants("saturated"))
        {
            // Writes bench/results/saturated-rows-N.* of its own.
            await new SaturatedBackfillScenario(_ctx, _options.Rows, _options.Clients, _options.MaxLoad, _options.Window, _options.DefaultLimit, Results).RunAsync();
        }

        if (Wants("partitioned"))
        {
            // Writes bench/results/partitioned-rows-N.* of its own.
            await new PartitionedRenameScenario(_ctx, _options.Rows, _options.Partitions, _options.Workload, _options.Window, Results).RunAsync();
        }

        if (_options.Scenarios.All(BenchOptions.OwnFileScenarios.Contains))
        {
            // Nothing for NAME.md: leave the results of the last full run as they are.
            ui.Line($"Done ({Fmt.Seconds(watch.Elapsed.TotalSeconds)}).");
            return 0;
        }

        results.Run = RunInfo(started, watch.Elapsed.TotalSeconds);
        var final = results;
        TargetEvaluator.Evaluate(final, _ctx.EngineOptions.LockTimeout.TotalMilliseconds);
        if (_options.Note is { } note)
        {
            final.Notes.Add(note);
        }

        if (_ctx.Observer.UnparsedStepReports > 0)
        {
            final.Notes.Add($"{_ctx.Observer.UnparsedStepReports} step report(s) of the engine did not parse: its verbose wording changed, so lock hold times may be missing.");
        }

        var (markdown, json) = await ResultsFiles.WriteAsync(final, Results.Directory, _options.Name, ct);
        ui.Line();
        ui.Line(new MarkdownReport(final).TargetsTable().ToConsole());
        ui.Line();
        ui.Line($"Wrote {markdown} and {json} ({Fmt.Seconds(watch.Elapsed.TotalSeconds)}).");
        return 0;
    }

    private bool Wants(string scenario) => _options.Scenarios.Contains(scenario);

    private RunInfo RunInfo(DateTimeOffset started, double seconds)
    {
        var memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024);
        var machine = string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessorCount} cores, {memory:0} GiB, {RuntimeInformation.OSDescription}, .NET {Environment.Version}");
        var workload = $"{_options.Workload.Describe()} (open loop; per version during a rollout the traffic is shared, not added)";
        return new RunInfo(
            _options.Name,
            started,
            seconds,
            _options.Rows,
            ReproducingCommand(_args.Skip(1).ToList()),
            GitCommit(),
            machine,
            _ctx.Server.Description,
            _ctx.EngineOptions.LockTimeout.TotalMilliseconds,
            _ctx.Options.LockHold.TotalSeconds,
            workload);
    }

    /// <summary>The command line without the options that do not change what is measured (where files go, notes), quoted for a shell.</summary>
    private static string ReproducingCommand(IReadOnlyList<string> args)
    {
        string[] cosmetic = ["--note", "--log", "--results-dir", "--status-interval"];
        var kept = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i].Split('=')[0];
            if (name == "--plain")
            {
                continue;
            }

            if (cosmetic.Contains(name))
            {
                i += args[i].Contains('=', StringComparison.Ordinal) ? 0 : 1;
                continue;
            }

            kept.Add(args[i].Any(char.IsWhiteSpace) ? "'" + args[i].Replace("'", "'\\''", StringComparison.Ordinal) + "'" : args[i]);
        }

        return "dotnet run -c Release --project bench/ZeroDowntime.Bench -- " + string.Join(' ', kept);
    }

    /// <summary>Where every results file of this run goes (--results-dir), with the caller's --note.</summary>
    private ResultsPlace Results => new(_options.ResultsDirectory ?? Path.Combine(RepositoryRoot(), "bench", "results"), _options.Note, _options.Name);

    internal static string RepositoryRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Module.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return Environment.CurrentDirectory;
    }

    private static string GitCommit()
    {
        try
        {
            var head = Run("git", "rev-parse --short HEAD").Trim();
            var dirty = Run("git", "status --porcelain --untracked-files=no").Trim().Length > 0;
            return head.Length == 0 ? "unknown" : head + (dirty ? " (with uncommitted changes)" : "");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }

        static string Run(string file, string arguments)
        {
            using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepositoryRoot() })!;
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? output : "";
        }
    }
}

/// <summary>The directory a scenario writes its results files to, the note (--note) they carry, and the run's name (--name; rows-N by default).</summary>
public sealed record ResultsPlace(string Directory, string? Note, string Name)
{
    /// <summary>The file name (without extension) of a scenario that writes files of its own: its prefix and the run's name.</summary>
    public string FileName(string scenarioPrefix) => scenarioPrefix + "-" + Name;
}
