using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Npgsql;
using ZeroDowntime.Engine.Connections;

namespace ZeroDowntime.Tests.Infrastructure;

/// <summary>
/// The one real PostgreSQL server the whole test run talks to, reached with a superuser. In the
/// order a user expects: an existing server named by ZDT_TEST_CONNECTION (keyword string or
/// postgresql:// URI); else a container of the image ZDT_TEST_POSTGRES_IMAGE names
/// (Testcontainers); else a throwaway cluster started from the machine's binaries. Whatever this
/// process starts, it destroys when the process exits.
/// </summary>
public sealed partial class PostgresServer
{
    /// <summary>Set this to a keyword connection string or a postgresql:// URI to test against an existing server.</summary>
    public const string ConnectionEnvironmentVariable = "ZDT_TEST_CONNECTION";

    /// <summary>Set this to a PostgreSQL image (e.g. postgres:17) to test against a container of it.</summary>
    public const string ImageEnvironmentVariable = "ZDT_TEST_POSTGRES_IMAGE";

    // ExecutionAndPublication: exactly one cluster even when test classes start in parallel.
    // A failed start is cached on purpose, so every test fails fast with the same message
    // instead of each one spending a minute trying again.
    private static readonly Lazy<PostgresServer> SharedServer =
        new(Create, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly Lazy<string> _serverVersion;

    private PostgresServer(NpgsqlConnectionStringBuilder builder, ThrowawayCluster? cluster, string? containerImage = null)
    {
        Cluster = cluster;
        ContainerImage = containerImage;
        ConnectionString = builder.ConnectionString;
        Host = builder.Host ?? "localhost";
        Port = builder.Port;
        Username = builder.Username ?? "";
        Password = builder.Password ?? "";
        Database = builder.Database ?? "postgres";
        SocketDirectory = cluster?.SocketDirectory;
        _serverVersion = new Lazy<string>(QueryServerVersion, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The server for this test process, started on first access.</summary>
    public static PostgresServer Shared => SharedServer.Value;

    /// <summary>True when ZDT_TEST_CONNECTION is set, i.e. no throwaway cluster will be started.</summary>
    public static bool UsesExternalServer =>
        !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(ConnectionEnvironmentVariable));

    /// <summary>A superuser connection string (Npgsql keyword form) to the maintenance database.</summary>
    public string ConnectionString { get; }

    public string Host { get; }

    public int Port { get; }

    public string Username { get; }

    public string Password { get; }

    /// <summary>The database <see cref="ConnectionString"/> points at ("postgres" for a throwaway cluster).</summary>
    public string Database { get; }

    /// <summary>Where the throwaway cluster's Unix socket lives (socket connections are trusted); null for an external server.</summary>
    public string? SocketDirectory { get; }

    /// <summary>
    /// True when this process started the server (a local cluster or a container), knows how it
    /// authenticates (scram-sha-256 over TCP, its own password) and will destroy it on exit.
    /// </summary>
    public bool IsThrowaway => Cluster is not null || ContainerImage is not null;

    /// <summary>The image of the container this process started, or null when there is none.</summary>
    public string? ContainerImage { get; }

    /// <summary>The server's version string (e.g. "15.18 (Debian 15.18-0+deb12u1)"); queried once, on first use.</summary>
    public string ServerVersion => _serverVersion.Value;

    /// <summary>
    /// The server's major version (13, 15, 17, ...): tests of a feature that depends on it check
    /// the documented fallback or refusal on the versions without it, never skip.
    /// </summary>
    public int MajorVersion => int.Parse(ServerVersion.Split('.', ' ')[0], CultureInfo.InvariantCulture);

    /// <summary>The throwaway cluster's directory and server log, for diagnosing failures; null for an external server.</summary>
    public string? ClusterDirectory => Cluster?.RootDirectory;

    public string? ServerLogFile => Cluster?.LogFile;

    private ThrowawayCluster? Cluster { get; }

    /// <summary>
    /// A variant of <see cref="ConnectionString"/> with some pieces replaced, e.g. another
    /// database, another role or a wrong password. Pooling is left as is.
    /// </summary>
    public string BuildConnectionString(string? database = null, string? username = null, string? password = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString);
        if (database is not null)
        {
            builder.Database = database;
        }

        if (username is not null)
        {
            builder.Username = username;
        }

        if (password is not null)
        {
            builder.Password = password;
        }

        return builder.ConnectionString;
    }

    /// <summary>
    /// This server as a postgresql:// URI, the one form both psql and the module's cmdlets accept
    /// (what the Pester tests get as ZDT_TEST_CONNECTION).
    /// </summary>
    public string BuildUri(string? database = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(BuildConnectionString(database));
        var uri = new StringBuilder("postgresql://");
        uri.Append(Uri.EscapeDataString(builder.Username ?? ""));
        if (!string.IsNullOrEmpty(builder.Password))
        {
            uri.Append(':').Append(Uri.EscapeDataString(builder.Password));
        }

        var host = builder.Host ?? "localhost";
        // A Unix socket directory goes in the query (host=/path), an IPv6 address in brackets.
        var hostIsSocket = host.StartsWith('/');
        uri.Append('@');
        if (!hostIsSocket)
        {
            uri.Append(host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host);
        }

        uri.Append(':').Append(builder.Port.ToString(CultureInfo.InvariantCulture));
        uri.Append('/').Append(Uri.EscapeDataString(builder.Database ?? "postgres"));

        var query = new List<string>();
        if (hostIsSocket)
        {
            query.Add("host=" + Uri.EscapeDataString(host));
        }

        if (builder.SslMode != SslMode.Prefer)
        {
            query.Add("sslmode=" + LibpqSslMode(builder.SslMode));
        }

        if (query.Count > 0)
        {
            uri.Append('?').Append(string.Join('&', query));
        }

        return uri.ToString();
    }

    private static string LibpqSslMode(SslMode mode) => mode switch
    {
        SslMode.VerifyCA => "verify-ca",
        SslMode.VerifyFull => "verify-full",
        _ => mode.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// ZDT_TEST_CONNECTION in either form the module accepts: a postgresql:// URI is resolved the
    /// way the cmdlets resolve it (libpq rules, PG* variables for what it leaves out).
    /// </summary>
    internal static NpgsqlConnectionStringBuilder ParseConnection(string connection) =>
        ConnectionUri.IsUri(connection.Trim())
            ? ConnectionTarget.Resolve(connection).CreateBuilder()
            : new NpgsqlConnectionStringBuilder(connection); // a keyword string is used exactly as given

    private static PostgresServer Create()
    {
        var external = Environment.GetEnvironmentVariable(ConnectionEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            // Used as given: whoever set it owns that server, so nothing is started or stopped.
            return new PostgresServer(ParseConnection(external), cluster: null);
        }

        var image = Environment.GetEnvironmentVariable(ImageEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(image))
        {
            NpgsqlConnectionStringBuilder? container = null;
            StartContainer(image.Trim(), ref container);
            return new PostgresServer(
                container ?? throw new InvalidOperationException($"{ImageEnvironmentVariable} is set, but this program cannot start containers (only the tests can)."),
                cluster: null,
                containerImage: image.Trim());
        }

        var cluster = ThrowawayCluster.Start();
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = cluster.Port,
            Username = ThrowawayCluster.Superuser,
            Password = cluster.Password,
            Database = "postgres",
            Pooling = true,
            IncludeErrorDetail = true,
        };
        return new PostgresServer(builder, cluster);
    }

    // Implemented by the tests (PostgresContainer.cs, with Testcontainers); the bench, which
    // compiles this file too, has no container backend and so no implementation.
    static partial void StartContainer(string image, ref NpgsqlConnectionStringBuilder? connection);

    private string QueryServerVersion()
    {
        using var connection = new NpgsqlConnection(ConnectionString);
        connection.Open();
        using var command = new NpgsqlCommand("SHOW server_version", connection);
        return command.ExecuteScalar() as string ?? connection.ServerVersion;
    }
}

/// <summary>
/// A PostgreSQL cluster in a temp directory, owned by this process: initdb, pg_ctl start on a
/// free port, and pg_ctl stop + delete when the process exits.
/// </summary>
internal sealed class ThrowawayCluster
{
    public const string Superuser = "postgres";

    private const string DirectoryPrefix = "zdt-pg-";
    private const string OwnerPidFileName = "owner.pid";
    private const int StartAttempts = 3;
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(120);

    private readonly ClusterCommandRunner _runner;
    private int _stopped;

    private ThrowawayCluster(string rootDirectory, ClusterCommandRunner runner)
    {
        RootDirectory = rootDirectory;
        DataDirectory = Path.Combine(rootDirectory, "data");
        SocketDirectory = Path.Combine(rootDirectory, "socket");
        LogFile = Path.Combine(rootDirectory, "server.log");
        _runner = runner;
        Password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
    }

    public string RootDirectory { get; }

    public string DataDirectory { get; }

    public string SocketDirectory { get; }

    public string LogFile { get; }

    public string Password { get; }

    public int Port { get; private set; }

    public static ThrowawayCluster Start()
    {
        var binDirectory = PostgresBinaries.FindBinDirectory()
            ?? throw new InvalidOperationException(
                "No PostgreSQL server binaries (initdb, pg_ctl) were found via 'pg_config --bindir', on PATH or under " +
                "/usr/lib/postgresql/*/bin. Install PostgreSQL (e.g. 'apt-get install -y postgresql') or set " +
                $"{PostgresServer.ConnectionEnvironmentVariable} to an Npgsql connection string for an existing server.");

        var runner = ClusterCommandRunner.Create(binDirectory);
        ReapAbandonedClusters(runner);

        var root = Directory.CreateTempSubdirectory(DirectoryPrefix).FullName;
        var cluster = new ThrowawayCluster(root, runner);

        // Both set up before anything is started so that even a half-started cluster is torn down.
        // The exit hook alone is not enough: vstest gives the test host only a moment to exit
        // after the run and then kills it, usually in the middle of the hook.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => cluster.Stop();
        ClusterWatchdog.Start(root, cluster.DataDirectory);
        try
        {
            cluster.Initialize();
            cluster.StartServer();
            return cluster;
        }
        catch
        {
            cluster.Stop();
            throw;
        }
    }

    /// <summary>Stops the server and deletes its files. Best effort, safe to call more than once.</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        // Pooled connections would otherwise linger as dead sockets in Npgsql's pools.
        try
        {
            NpgsqlConnection.ClearAllPools();
        }
        catch (Exception)
        {
            // Irrelevant once the process is going away.
        }

        StopAndDelete(_runner, RootDirectory);
    }

    private static void StopAndDelete(ClusterCommandRunner runner, string rootDirectory)
    {
        var dataDirectory = Path.Combine(rootDirectory, "data");
        if (File.Exists(Path.Combine(dataDirectory, "postmaster.pid")))
        {
            try
            {
                runner.Run("pg_ctl", ["-D", dataDirectory, "stop", "-m", "immediate", "-w", "-t", "30"], TimeSpan.FromSeconds(40));
            }
            catch (Exception)
            {
                // Fall through: the kill below covers a pg_ctl that failed or hung.
            }

            KillPostmasterIfAlive(dataDirectory);
        }

        try
        {
            Directory.Delete(rootDirectory, recursive: true);
        }
        catch (Exception)
        {
            // A leftover temp dir is harmless; the next run's reaper retries.
        }
    }

    private static void KillPostmasterIfAlive(string dataDirectory)
    {
        try
        {
            var pidFile = Path.Combine(dataDirectory, "postmaster.pid");
            if (!File.Exists(pidFile))
            {
                return;
            }

            var firstLine = File.ReadLines(pidFile).FirstOrDefault();
            if (int.TryParse(firstLine, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid))
            {
                using var postmaster = Process.GetProcessById(pid);
                postmaster.Kill(entireProcessTree: true);
                postmaster.WaitForExit(10_000);
            }
        }
        catch (Exception)
        {
            // Already gone (or not ours to kill): nothing more to do.
        }
    }

    /// <summary>
    /// Removes clusters left behind by test processes that were killed before their exit hook
    /// ran (e.g. a cancelled test run), so they do not pile up on developer machines.
    /// </summary>
    private static void ReapAbandonedClusters(ClusterCommandRunner runner)
    {
        try
        {
            foreach (var directory in Directory.EnumerateDirectories(Path.GetTempPath(), DirectoryPrefix + "*"))
            {
                var ownerFile = Path.Combine(directory, OwnerPidFileName);
                if (!File.Exists(ownerFile)
                    || !int.TryParse(File.ReadAllText(ownerFile).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ownerPid)
                    || IsProcessAlive(ownerPid))
                {
                    continue;
                }

                StopAndDelete(runner, directory);
            }
        }
        catch (Exception)
        {
            // Housekeeping only; never let it prevent this run's cluster from starting.
        }
    }

    private static bool IsProcessAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private void Initialize()
    {
        File.WriteAllText(Path.Combine(RootDirectory, OwnerPidFileName), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(SocketDirectory);
        var passwordFile = Path.Combine(RootDirectory, "pwfile");
        File.WriteAllText(passwordFile, Password + "\n");
        _runner.GiveToServerUser(RootDirectory);

        // --no-sync: durability of a throwaway cluster is worthless and syncing costs seconds.
        string[] commonArguments =
        [
            "-D", DataDirectory, "-U", Superuser, "-E", "UTF8",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=" + passwordFile, "--no-sync",
        ];

        // C.UTF-8 gives UTF-8 character semantics; a machine without that locale still gets a C cluster.
        var result = _runner.Run("initdb", [.. commonArguments, "--locale=C.UTF-8"], CommandTimeout);
        if (result.ExitCode != 0)
        {
            DeleteDirectoryIfExists(DataDirectory);
            var fallback = _runner.Run("initdb", [.. commonArguments, "--no-locale"], CommandTimeout);
            if (fallback.ExitCode != 0)
            {
                throw new InvalidOperationException(
                    $"initdb failed (exit code {fallback.ExitCode}) in {DataDirectory}.{Environment.NewLine}" +
                    $"With --locale=C.UTF-8:{Environment.NewLine}{result.Output}{Environment.NewLine}" +
                    $"With --no-locale:{Environment.NewLine}{fallback.Output}");
            }
        }

        File.Delete(passwordFile);
    }

    private void StartServer()
    {
        // The port is free when probed but another process may grab it before the server binds,
        // so a start that failed for that reason is retried on a fresh port.
        for (var attempt = 1; ; attempt++)
        {
            Port = FreeTcpPort();
            var serverOptions = string.Join(' ',
                $"-p {Port}",
                $"-k {SocketDirectory}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=256MB");

            var result = _runner.Run(
                "pg_ctl",
                ["-D", DataDirectory, "-l", LogFile, "-w", "-t", "60", "-o", serverOptions, "start"],
                CommandTimeout);
            if (result.ExitCode == 0)
            {
                return;
            }

            var logTail = ReadLogTail();
            KillPostmasterIfAlive(DataDirectory);
            var portTaken = logTail.Contains("could not bind", StringComparison.OrdinalIgnoreCase)
                || logTail.Contains("Address already in use", StringComparison.OrdinalIgnoreCase);
            if (portTaken && attempt < StartAttempts)
            {
                continue;
            }

            throw new InvalidOperationException(
                $"pg_ctl start failed (exit code {result.ExitCode}) for {DataDirectory} on port {Port}.{Environment.NewLine}" +
                $"pg_ctl output:{Environment.NewLine}{result.Output}{Environment.NewLine}" +
                $"Tail of {LogFile}:{Environment.NewLine}{logTail}");
        }
    }

    private string ReadLogTail(int lines = 40)
    {
        try
        {
            return File.Exists(LogFile)
                ? string.Join(Environment.NewLine, File.ReadLines(LogFile).TakeLast(lines))
                : "(no server log was written)";
        }
        catch (IOException exception)
        {
            return $"(could not read the server log: {exception.Message})";
        }
    }

    private static int FreeTcpPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static void DeleteDirectoryIfExists(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }
}

/// <summary>
/// A detached shell process that waits for this process to die, however it dies, and then does
/// what <c>pg_ctl stop -m immediate</c> does (SIGQUIT to the postmaster) and deletes the cluster.
/// It signals directly instead of running pg_ctl so it needs no user switching.
/// </summary>
internal static class ClusterWatchdog
{
    private const string Script = """
        exec </dev/null >/dev/null 2>&1
        owner=$1 data=$2 root=$3
        while kill -0 "$owner"; do sleep 0.5; done
        if [ -f "$data/postmaster.pid" ]; then
          postmaster=$(head -n 1 "$data/postmaster.pid")
          kill -QUIT "$postmaster"
          # The postmaster removes its pid file when it is done; wait for that, but not forever.
          tries=0
          while [ -f "$data/postmaster.pid" ] && [ "$tries" -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
          [ -f "$data/postmaster.pid" ] && kill -KILL "$postmaster"
        fi
        rm -rf "$root"
        """;

    public static void Start(string rootDirectory, string dataDirectory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        try
        {
            // setsid: a Ctrl+C sent to the test run's process group must not take the watchdog with it.
            var useSetsid = ProcessRunner.IsOnPath("setsid");
            var startInfo = new ProcessStartInfo(useSetsid ? "setsid" : "/bin/sh")
            {
                UseShellExecute = false,
                // Pipes rather than inherited console handles, so nothing waits on the watchdog's output.
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = "/",
            };
            string[] arguments =
            [
                .. useSetsid ? new[] { "/bin/sh" } : [],
                "-c", Script, "zdt-pg-watchdog",
                Environment.ProcessId.ToString(CultureInfo.InvariantCulture), dataDirectory, rootDirectory,
            ];
            foreach (var argument in arguments)
            {
                startInfo.ArgumentList.Add(argument);
            }

            using var watchdog = Process.Start(startInfo);
        }
        catch (Exception exception) when (exception is Win32Exception or InvalidOperationException)
        {
            // Only a backstop for the exit hook and the next run's reaper.
        }
    }
}

/// <summary>Finds the directory holding initdb and pg_ctl.</summary>
internal static class PostgresBinaries
{
    private const string DebianRoot = "/usr/lib/postgresql";

    public static string? FindBinDirectory() =>
        FromPgConfig() ?? FromPath() ?? FromDebianLayout();

    private static string? FromPgConfig()
    {
        try
        {
            var result = ProcessRunner.Run("pg_config", ["--bindir"], TimeSpan.FromSeconds(30));
            var directory = result.Output.Trim();
            return result.ExitCode == 0 && HasServerTools(directory) ? directory : null;
        }
        catch (Win32Exception)
        {
            return null; // pg_config is not installed
        }
    }

    private static string? FromPath()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var entry in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(entry, Executable("initdb"));
            if (!File.Exists(candidate))
            {
                continue;
            }

            // /usr/local/bin/initdb is often a symlink; pg_ctl is next to the real file.
            var resolved = new FileInfo(candidate).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? candidate;
            var directory = Path.GetDirectoryName(resolved);
            if (directory is not null && HasServerTools(directory))
            {
                return directory;
            }

            if (HasServerTools(entry))
            {
                return entry;
            }
        }

        return null;
    }

    private static string? FromDebianLayout()
    {
        if (!Directory.Exists(DebianRoot))
        {
            return null;
        }

        return Directory.EnumerateDirectories(DebianRoot)
            .Select(directory => (Directory: Path.Combine(directory, "bin"), Version: ParseVersion(Path.GetFileName(directory))))
            .Where(candidate => candidate.Version is not null && HasServerTools(candidate.Directory))
            .OrderByDescending(candidate => candidate.Version)
            .Select(candidate => candidate.Directory)
            .FirstOrDefault();
    }

    private static Version? ParseVersion(string name) =>
        Version.TryParse(name.Contains('.', StringComparison.Ordinal) ? name : name + ".0", out var version) ? version : null;

    private static bool HasServerTools(string directory) =>
        File.Exists(Path.Combine(directory, Executable("initdb"))) && File.Exists(Path.Combine(directory, Executable("pg_ctl")));

    public static string Executable(string name) => OperatingSystem.IsWindows() ? name + ".exe" : name;
}

/// <summary>
/// Runs initdb and pg_ctl from one bin directory, as the "postgres" OS user when this process is
/// root, because PostgreSQL refuses to run as root.
/// </summary>
internal sealed class ClusterCommandRunner
{
    private const string ServerUser = "postgres";

    private readonly string _binDirectory;
    private readonly SwitchUserTool? _switchUser;

    private ClusterCommandRunner(string binDirectory, SwitchUserTool? switchUser)
    {
        _binDirectory = binDirectory;
        _switchUser = switchUser;
    }

    private enum SwitchUserTool
    {
        Runuser,
        Su,
    }

    public static ClusterCommandRunner Create(string binDirectory)
    {
        if (!OsIdentity.IsRoot())
        {
            return new ClusterCommandRunner(binDirectory, switchUser: null);
        }

        if (!OsIdentity.UserExists(ServerUser))
        {
            throw new InvalidOperationException(
                $"The tests run as root, and PostgreSQL refuses to run as root, but there is no '{ServerUser}' OS user to run " +
                $"the throwaway cluster as. Create it (e.g. 'useradd --system --create-home {ServerUser}'), install the " +
                $"postgresql package (which creates it), run the tests as a non-root user, or set " +
                $"{PostgresServer.ConnectionEnvironmentVariable} to an existing server.");
        }

        var tool = ProcessRunner.IsOnPath("runuser") ? SwitchUserTool.Runuser : SwitchUserTool.Su;
        return new ClusterCommandRunner(binDirectory, tool);
    }

    /// <summary>Hands a directory tree to the server user so initdb and the server can write there.</summary>
    public void GiveToServerUser(string directory)
    {
        if (_switchUser is null)
        {
            return;
        }

        var result = ProcessRunner.Run("chown", ["-R", $"{ServerUser}:{ServerUser}", directory], TimeSpan.FromSeconds(30));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"chown -R {ServerUser}:{ServerUser} {directory} failed: {result.Output}");
        }
    }

    public CommandResult Run(string tool, IReadOnlyList<string> arguments, TimeSpan timeout)
    {
        var executable = Path.Combine(_binDirectory, PostgresBinaries.Executable(tool));
        return _switchUser switch
        {
            null => ProcessRunner.Run(executable, arguments, timeout),
            SwitchUserTool.Runuser => ProcessRunner.Run("runuser", ["-u", ServerUser, "--", executable, .. arguments], timeout),
            _ => ProcessRunner.Run(
                "su",
                [ServerUser, "-s", "/bin/sh", "-c", string.Join(' ', new[] { executable }.Concat(arguments).Select(ShellQuote))],
                timeout),
        };
    }

    private static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

/// <summary>Who this process runs as.</summary>
internal static class OsIdentity
{
    public static bool IsRoot()
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        try
        {
            return GetEffectiveUserId() == 0;
        }
        catch (Exception exception) when (exception is DllNotFoundException or EntryPointNotFoundException)
        {
            return Environment.UserName == "root";
        }
    }

    public static bool UserExists(string name)
    {
        try
        {
            return ProcessRunner.Run("id", ["-u", name], TimeSpan.FromSeconds(10)).ExitCode == 0;
        }
        catch (Win32Exception)
        {
            return File.ReadLines("/etc/passwd").Any(line => line.StartsWith(name + ":", StringComparison.Ordinal));
        }
    }

    // DllImport rather than LibraryImport: the generated stub needs AllowUnsafeBlocks, and a
    // parameterless call returning uint needs no marshalling anyway.
    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEffectiveUserId();
}

internal sealed record CommandResult(int ExitCode, string Output);

/// <summary>Runs a command to completion, capturing stdout and stderr together.</summary>
internal static class ProcessRunner
{
    /// <param name="workingDirectory">Defaults to the temp directory: the server user may not be able to enter the test's own (e.g. under /root).</param>
    /// <param name="environment">Variables to set (or, with a null value, remove) for the child only.</param>
    public static CommandResult Run(
        string fileName,
        IReadOnlyList<string> arguments,
        TimeSpan timeout,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                startInfo.Environment.Remove(name);
            }
            else
            {
                startInfo.Environment[name] = value;
            }
        }

        var output = new StringBuilder();
        using var process = new Process { StartInfo = startInfo };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.Start();
        process.StandardInput.Close(); // nothing may wait for a terminal (CI has no stdin)
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        if (!process.WaitForExit(timeout))
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It exited just now.
            }

            throw new TimeoutException($"'{fileName} {string.Join(' ', arguments)}' did not finish within {timeout.TotalSeconds:0}s. Output so far:{Environment.NewLine}{Snapshot(output)}");
        }

        // Drains the redirected streams; bounded in case a daemonised child kept them open.
        process.WaitForExit(TimeSpan.FromSeconds(5));
        return new CommandResult(process.ExitCode, Snapshot(output));
    }

    public static bool IsOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(directory => File.Exists(Path.Combine(directory, name)));

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    private static string Snapshot(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }
}
