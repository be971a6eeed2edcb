using System.Reflection;
using System.Text.Json;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.PowerShellHost;

/// <summary>
/// Every Pester test in tests/pester, run in real PowerShell 7.6.9 (the local .NET tool, as
/// `dotnet pwsh`) with Pester 5.7.1 (restored as a NuGet package) against a fresh database of
/// this run's server, and reported as one xunit test each, so `dotnet test` counts and fails them
/// like any other test. The tests are listed by a Pester discovery run; the first one to execute
/// runs the whole Pester suite once (one PowerShell process, one module import) and every test
/// then reports its own result.
/// </summary>
public sealed class PesterTests
{
    [Theory]
    [MemberData(nameof(Tests))]
    public async Task Pester(string test)
    {
        var results = await PesterSuite.Results.Value;

        if (!results.TryGetValue(test, out var result))
        {
            Assert.Fail($"Pester did not report '{test}'. It reported {results.Count} test(s); see {PesterSuite.ResultFile}.");
        }

        // Skipped is a failure too: none may be skipped for want of a database (or anything else).
        Assert.True(result.Result == "Passed", $"Pester: {result.Result}{Environment.NewLine}{result.Message}");
    }

    public static TheoryData<string> Tests()
    {
        var data = new TheoryData<string>();
        foreach (var test in PesterSuite.Discover())
        {
            data.Add(test);
        }

        return data;
    }
}

/// <summary>One Pester test's outcome, as tests/pester/Invoke-ZdtPester.ps1 writes it.</summary>
internal sealed record PesterTestResult(string Key, string Result, string? Message, int DurationMs);

/// <summary>Runs tests/pester/Invoke-ZdtPester.ps1 in `dotnet pwsh`.</summary>
internal static class PesterSuite
{
    /// <summary>Where the NUnit XML goes (Azure DevOps publishes it); default TestResults/pester.xml.</summary>
    public const string ResultFileEnvironmentVariable = "ZDT_PESTER_RESULT_FILE";

    private static readonly TimeSpan DiscoveryTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(20);
    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true };

    public static readonly Lazy<Task<IReadOnlyDictionary<string, PesterTestResult>>> Results =
        new(() => Task.Run(RunAll), LazyThreadSafetyMode.ExecutionAndPublication);

    public static string RepositoryRoot => Metadata("ZdtRepositoryRoot");

    public static string PesterModule => Metadata("PesterModule");

    public static string ResultFile =>
        Environment.GetEnvironmentVariable(ResultFileEnvironmentVariable) is { Length: > 0 } path
            ? Path.GetFullPath(path, RepositoryRoot)
            : Path.Combine(RepositoryRoot, "TestResults", "pester.xml");

    public static IReadOnlyList<string> Discover()
    {
        var results = Invoke(discover: true, connection: null, DiscoveryTimeout);
        return results.Select(result => result.Key).ToList();
    }

    private static async Task<IReadOnlyDictionary<string, PesterTestResult>> RunAll()
    {
        var database = new TestDatabase();
        await database.InitializeAsync().ConfigureAwait(false);
        try
        {
            var connection = database.Server.BuildUri(database.DatabaseName);
            var results = Invoke(discover: false, connection, RunTimeout);
            return results.ToDictionary(result => result.Key, StringComparer.Ordinal);
        }
        finally
        {
            await database.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static IReadOnlyList<PesterTestResult> Invoke(bool discover, string? connection, TimeSpan timeout)
    {
        var outFile = Path.Combine(Path.GetTempPath(), $"zdt-pester-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        List<string> arguments =
        [
            "pwsh", "-NoProfile", "-NonInteractive", "-File", Path.Combine(RepositoryRoot, "tests", "pester", "Invoke-ZdtPester.ps1"),
            "-PesterModule", PesterModule, "-OutFile", outFile,
        ];
        if (discover)
        {
            arguments.Add("-Discover");
        }
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(ResultFile)!);
            arguments.AddRange(["-TestResultPath", ResultFile]);
        }

        // The connection for the child only; discovery needs none (a test's name never depends on it).
        var environment = new Dictionary<string, string?> { [PostgresServer.ConnectionEnvironmentVariable] = connection };
        try
        {
            // From the repository root, where `dotnet pwsh` finds the tool manifest (.config/).
            var result = ProcessRunner.Run(DotnetHost(), arguments, timeout, RepositoryRoot, environment);
            if (!File.Exists(outFile))
            {
                throw new InvalidOperationException(
                    $"dotnet {string.Join(' ', arguments.Take(5))} wrote no results (exit code {result.ExitCode}). " +
                    $"Has `dotnet tool restore` run (the build runs it)?{Environment.NewLine}{result.Output}");
            }

            return JsonSerializer.Deserialize<List<PesterTestResult>>(File.ReadAllText(outFile), Json)
                ?? throw new InvalidOperationException($"{outFile} held no results.{Environment.NewLine}{result.Output}");
        }
        finally
        {
            File.Delete(outFile);
        }
    }

    // The dotnet that runs these tests, so `dotnet pwsh` uses the same SDK and its tool manifest.
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static string Metadata(string key) =>
        typeof(PesterSuite).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(attribute => attribute.Key == key)?.Value
        ?? throw new InvalidOperationException($"The test assembly has no '{key}' metadata (see ZeroDowntime.Tests.csproj).");
}
