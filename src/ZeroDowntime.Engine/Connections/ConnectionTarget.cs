using System.Globalization;
using Npgsql;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Connections;

/// <summary>
/// Where the engine connects, resolved once from a connection string (Npgsql keywords or a
/// postgresql:// URI), the libpq environment variables and an optional credential.
/// Its public surface never exposes the password; the full connection string stays private.
/// </summary>
public sealed class ConnectionTarget
{
    /// <summary>Shown in pg_stat_activity when the user names no application, so DBAs can spot our sessions.</summary>
    const string DefaultApplicationName = "ZeroDowntime";

    // The full connection string, password included. Never returned by any member.
    readonly string _connectionString;
    readonly SecretScrubber _scrubber;
    NpgsqlDataSource? _dataSource;
    NpgsqlDataSource? _noResetDataSource;

    ConnectionTarget(NpgsqlConnectionStringBuilder builder)
    {
        _connectionString = Canonical(builder);
        _scrubber = new SecretScrubber(builder.Password, builder.SslPassword);

        Host = builder.Host ?? "";
        Port = builder.Port;
        Database = builder.Database ?? "";
        Username = builder.Username ?? "";
        HasPassword = !string.IsNullOrEmpty(builder.Password);
        TimeoutSeconds = builder.Timeout;
        Endpoint = HostList.Describe(Host, Port);

        var safe = new NpgsqlConnectionStringBuilder(_connectionString);
        safe.Remove("Password");
        safe.Remove("SSL Password");
        SafeConnectionString = safe.ConnectionString;
    }

    /// <summary>The host, Unix socket directory, or (for several hosts) Npgsql's comma-separated host list.</summary>
    public string Host { get; }

    /// <summary>The port; with several hosts, the port of those hosts that do not name their own.</summary>
    public int Port { get; }

    public string Database { get; }

    public string Username { get; }

    /// <summary>Whether a password was supplied (by any source), without revealing it.</summary>
    public bool HasPassword { get; }

    /// <summary>The connection string in Npgsql keyword form with the password removed.</summary>
    public string SafeConnectionString { get; }

    /// <summary>"host:port" (or a comma-separated list of them), for messages.</summary>
    internal string Endpoint { get; }

    internal int TimeoutSeconds { get; }

    /// <summary>
    /// The data source (connection pool) for this target, created on first use and shared with
    /// every other target that has the same settings.
    /// </summary>
    internal NpgsqlDataSource DataSource => _dataSource ??= SourceFor(_connectionString);

    /// <summary>
    /// A pool of the same settings whose connections are not reset when given back (no DISCARD
    /// ALL). Only for work that leaves no session state behind: each reset is one more
    /// transaction in the server's counters, which the adaptive throttle would read as another
    /// session's load (one per batch: hundreds per second when the batches are small).
    /// </summary>
    NpgsqlDataSource NoResetDataSource => _noResetDataSource ??= SourceFor(Canonical(new NpgsqlConnectionStringBuilder(_connectionString) { NoResetOnClose = true }));

    // A race only means two threads fetch the same instance from the cache.
    NpgsqlDataSource SourceFor(string connectionString)
    {
        try
        {
            return DataSourceCache.Get(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException)
        {
            // Npgsql validates combinations of settings only here, e.g. multiplexing with
            // options it does not support.
            throw new ZdtException(ConnectionErrors.InvalidConnectionString, ErrorKind.InvalidArgument,
                Scrub($"Npgsql does not accept the connection settings for {this}: {e.Message}"));
        }
    }

    /// <summary>
    /// Resolves a target the way libpq would: the connection string (keyword form or
    /// postgresql:// URI) first, then the PG* environment variables for whatever is missing, then
    /// the defaults. A credential's user name and password override all of them.
    /// </summary>
    /// <param name="connectionString">Npgsql keyword form, a postgresql:// or postgres:// URI, or null/empty.</param>
    /// <param name="userName">The credential's user name; overrides any other source when not empty.</param>
    /// <param name="password">The credential's password; overrides any other source when not empty.</param>
    /// <param name="environment">Reads an environment variable; defaults to the process environment.</param>
    public static ConnectionTarget Resolve(string? connectionString, string? userName = null, string? password = null, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var settings = new ConnectionSettings(password);

        var text = connectionString?.Trim() ?? "";
        if (ConnectionUri.IsUri(text))
        {
            ConnectionUri.Parse(text, settings);
        }
        else if (text.Length > 0)
        {
            KeywordConnectionString.Parse(text, settings);
        }

        FillFromEnvironment(settings, environment);
        ResolveHosts(settings, environment);

        var builder = settings.Builder;
        if (!string.IsNullOrEmpty(userName))
        {
            builder.Username = userName;
        }
        // An empty password (a credential whose password was left blank) means "none supplied", so
        // the connection string, PGPASSWORD or a passfile can still provide one.
        if (!string.IsNullOrEmpty(password))
        {
            builder.Password = password;
        }

        if (!settings.IsSet("Username"))
        {
            builder.Username = Environment.UserName;
        }
        if (!settings.IsSet("Database"))
        {
            builder.Database = builder.Username;
        }
        if (!settings.IsSet("Application Name"))
        {
            builder.ApplicationName = string.IsNullOrEmpty(settings.FallbackApplicationName)
                ? DefaultApplicationName
                : settings.FallbackApplicationName;
        }

        RequireSeveralHostsForTargetSession(settings);
        return new ConnectionTarget(builder);
    }

    /// <summary>The same target with another database (e.g. to reach a database other than the one named).</summary>
    internal ConnectionTarget WithDatabase(string database)
    {
        if (string.IsNullOrWhiteSpace(database))
        {
            throw new ZdtException(ConnectionErrors.InvalidConnectionString, ErrorKind.InvalidArgument,
                "A database name is required.");
        }

        var builder = CreateBuilder();
        builder.Database = database;
        return new ConnectionTarget(builder);
    }

    /// <summary>
    /// A fresh builder with every setting, password included, for the engine's own connections
    /// (a monitor or replica connection). Never hand it, or its ConnectionString, to the user.
    /// </summary>
    internal NpgsqlConnectionStringBuilder CreateBuilder() => new(_connectionString);

    /// <summary>Opens a connection, turning failures into ZdtException with a scrubbed message.</summary>
    internal Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken) => OpenAsync(DataSource, cancellationToken);

    /// <summary>
    /// Opens a connection that is not reset when it is closed: for a transaction that sets
    /// nothing beyond itself (SET LOCAL only), such as a backfill batch or its heartbeat.
    /// </summary>
    internal Task<NpgsqlConnection> OpenWithoutResetAsync(CancellationToken cancellationToken) => OpenAsync(NoResetDataSource, cancellationToken);

    async Task<NpgsqlConnection> OpenAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        try
        {
            return await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (OpenFailure.Translate(e, this) is { } translated)
        {
            throw translated;
        }
    }

    /// <summary>Removes the password from any text before it is shown or stored.</summary>
    internal string Scrub(string text) => _scrubber.Scrub(text);

    public override string ToString() => $"{Username}@{Endpoint}/{Database}";

    // The same settings must give the same string, whichever form or order they were written in,
    // because the string is the key under which targets share a data source.
    static string Canonical(NpgsqlConnectionStringBuilder builder)
    {
        var canonical = new NpgsqlConnectionStringBuilder();
        // Port is written even when it is only Npgsql's default, for the same reason.
        var keywords = builder.Keys.Cast<string>().Append("Port")
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .Order(StringComparer.OrdinalIgnoreCase);
        foreach (var keyword in keywords)
        {
            canonical[keyword] = builder[keyword];
        }
        return canonical.ConnectionString;
    }

    static void FillFromEnvironment(ConnectionSettings settings, Func<string, string?> environment)
    {
        foreach (var parameter in LibpqParameter.WithEnvironmentFallback)
        {
            if (!settings.IsSet(parameter.Keyword!)
                && environment(parameter.EnvironmentVariable!) is { Length: > 0 } value)
            {
                settings.Apply(parameter, value, $"Environment variable {parameter.EnvironmentVariable}");
            }
        }
    }

    static void ResolveHosts(ConnectionSettings settings, Func<string, string?> environment)
    {
        var builder = settings.Builder;
        var pgPort = environment("PGPORT") is { Length: > 0 } portVariable ? portVariable.Split(',') : null;

        if (settings.IsSet("Host"))
        {
            // A keyword connection string names its hosts (and any per-host ports) in Npgsql's own
            // syntax, so only a missing Port is filled, and it has to be a single port.
            if (!settings.IsSet("Port") && pgPort is not null)
            {
                builder.Port = pgPort.Length == 1
                    ? HostList.ParsePort(pgPort[0], settings)
                    : throw settings.Invalid("PGPORT lists several ports, but the connection string's Host does not say which host each belongs to.");
            }
            return;
        }

        var hosts = settings.Hosts
            ?? (environment("PGHOST") is { Length: > 0 } hostVariable ? hostVariable.Split(',') : null)
            ?? [HostList.DefaultHost];
        IReadOnlyList<string> ports = settings.Ports
            ?? (settings.IsSet("Port") ? [builder.Port.ToString(CultureInfo.InvariantCulture)] : pgPort ?? []);

        (builder.Host, builder.Port) = HostList.Combine(hosts, ports, settings);
    }

    // libpq checks target_session_attrs even for a single host; Npgsql rejects it then (at the
    // first connection), so say so up front rather than let a role check silently not happen.
    static void RequireSeveralHostsForTargetSession(ConnectionSettings settings)
    {
        var attributes = settings.Builder.TargetSessionAttributes;
        if (!string.IsNullOrEmpty(attributes)
            && !attributes.Equals("any", StringComparison.OrdinalIgnoreCase)
            && !settings.Builder.Host!.Contains(','))
        {
            throw settings.Invalid(
                $"target_session_attrs={attributes} needs two or more hosts: Npgsql checks a server's role only when it chooses between hosts.");
        }
    }
}
