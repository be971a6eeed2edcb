using ZeroDowntime.Bench.Cli;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Scenarios;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Bench;

public static class Program
{
    private const int Failed = 1;
    private const int Crashed = 2;
    private const int Usage = 64;

    private const string UsageText = """
        Usage:
          dotnet run -c Release --project bench/ZeroDowntime.Bench -- demo [options]
          dotnet run -c Release --project bench/ZeroDowntime.Bench -- bench [--rows N] [--name NAME] [options]

        demo   Renames orders.address to billing_address on a table of --rows rows (300,000) while two
               application versions run, phase by phase, against a baseline measured first.
               --rows N --baseline SECONDS (5) --rate STATEMENTS_PER_S (500 per version)
               --connections N (3 per version) --no-lock-holder
        bench  Measures the engine and writes bench/results/NAME.md and NAME.json.
               --rows N (1,000,000) --name NAME (rows-N) --window SECONDS (10) --rate N (800;
               0: closed loop, each connection flat out) --connections N (4) --ddl-rows N,N (rows/10,rows) --view-rows N,N (10000,rows)
               --only LIST / --skip LIST of: backfill,throttle,ddl,view,trigger,parity,typechange,
               saturated,partitioned   --partitions N (24: the partitioned scenario's partitions)
               --results-dir DIR (bench/results) --note TEXT (added to the results); typechange,
               saturated and partitioned write files of their own: type-change-NAME, saturated-NAME,
               partitioned-NAME

        Both:  --connection STRING   an existing server (Npgsql keywords or postgresql:// URI); the PG*
                                     variables are used too. Without either, a throwaway PostgreSQL is
                                     started from the machine's binaries and removed at the end.
               --throwaway           start a throwaway server even when PG* variables are set
               --lock-timeout MS     the engine's lock_timeout (its default, 200)
               --lock-hold SECONDS   how long an injected lock holder keeps its transaction (1.5)
               --plain               periodic status lines instead of a rewritten line (automatic
                                     when output is not a terminal or CI is set)
               --status-interval S   seconds between status lines in plain mode (2)
               --log FILE            write the engine's verbose messages there
        """;

    public static async Task<int> Main(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        System.Console.CancelKeyPress += (_, e) =>
        {
            // First Ctrl+C: stop cleanly (the throwaway server is removed); a second one kills.
            if (!cancel.IsCancellationRequested)
            {
                e.Cancel = true;
                cancel.Cancel();
            }
        };

        CommandLine commandLine;
        try
        {
            commandLine = CommandLine.Parse(args);
        }
        catch (UsageException e)
        {
            await System.Console.Error.WriteLineAsync(e.Message + "\n\n" + UsageText);
            return Usage;
        }

        try
        {
            return await RunAsync(commandLine, cancel.Token);
        }
        catch (UsageException e)
        {
            await System.Console.Error.WriteLineAsync(e.Message + "\n\n" + UsageText);
            return Usage;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            await System.Console.Error.WriteLineAsync("Interrupted.");
            return Failed;
        }
        catch (ZdtException e)
        {
            await System.Console.Error.WriteLineAsync($"\nThe engine refused or failed ({e.ErrorId}): {e.Message}");
            return Crashed;
        }
        catch (Exception e)
        {
            // Anything else is a failed run, not a crash with a runtime-specific exit code: the
            // caller (a person, build.ps1, a script) only needs "it did not work, here is why".
            await System.Console.Error.WriteLineAsync($"\nThe run failed: {e}");
            return Crashed;
        }
    }

    private static async Task<int> RunAsync(CommandLine cl, CancellationToken ct)
    {
        var common = new CommonOptions
        {
            Connection = cl.String("connection"),
            ForceThrowaway = cl.Flag("throwaway"),
            LockTimeout = TimeSpan.FromMilliseconds(cl.Double("lock-timeout", 200)),
            LockHold = TimeSpan.FromSeconds(cl.Double("lock-hold", 1.5)),
            LogFile = cl.String("log"),
        };
        var ui = ConsoleUi.ForConsole(cl.Flag("plain"), TimeSpan.FromSeconds(cl.Double("status-interval", 2)));

        switch (cl.Command)
        {
            case "demo":
                var demo = new DemoOptions
                {
                    Rows = cl.Long("rows", 300_000),
                    Baseline = TimeSpan.FromSeconds(cl.Double("baseline", 5)),
                    Rate = cl.Double("rate", 500),
                    Connections = (int)cl.Long("connections", 3),
                    InjectLocks = !cl.Flag("no-lock-holder"),
                };
                cl.RejectUnknown();
                await using (var ctx = await BenchContext.CreateAsync(common, ui, ct))
                {
                    return await new DemoCommand(ctx, demo).RunAsync();
                }

            case "bench":
                var bench = BenchOptions.From(cl);
                cl.RejectUnknown();
                await using (var ctx = await BenchContext.CreateAsync(common, ui, ct))
                {
                    return await new BenchCommand(ctx, bench, Environment.GetCommandLineArgs()).RunAsync();
                }

            default:
                throw new UsageException($"Unknown command '{cl.Command}'.");
        }
    }
}
