using System.Globalization;
using Npgsql;

namespace ZeroDowntime.Engine.Connections;

/// <summary>
/// A libpq connection parameter that we accept in a postgresql:// URI, with the environment
/// variable libpq reads it from and the Npgsql keyword it becomes.
/// </summary>
/// <remarks>
/// The list is deliberately short: a parameter we do not know is an error rather than silently
/// ignored, because an ignored sslmode or target_session_attrs would change what we connect to.
/// </remarks>
internal sealed class LibpqParameter
{
    internal const string HostName = "host";
    internal const string PortName = "port";
    internal const string FallbackApplicationName = "fallback_application_name";

    static readonly IReadOnlyDictionary<string, SslMode> SslModes = new Dictionary<string, SslMode>(StringComparer.OrdinalIgnoreCase)
    {
        ["disable"] = SslMode.Disable,
        ["allow"] = SslMode.Allow,
        ["prefer"] = SslMode.Prefer,
        ["require"] = SslMode.Require,
        ["verify-ca"] = SslMode.VerifyCA,
        ["verify-full"] = SslMode.VerifyFull,
    };

    static readonly LibpqParameter[] All =
    [
        // host and port are lists in libpq and are combined into Npgsql's Host/Port by HostList.
        new(HostName, null, null),
        new(PortName, null, null),
        new("dbname", "PGDATABASE", "Database"),
        new("user", "PGUSER", "Username"),
        new("password", "PGPASSWORD", "Password", isSecret: true),
        new("passfile", "PGPASSFILE", "Passfile"),
        new("application_name", "PGAPPNAME", "Application Name"),
        new(FallbackApplicationName, null, null),
        new("sslmode", "PGSSLMODE", "SSL Mode", convert: ToSslMode,
            hint: " (use disable, allow, prefer, require, verify-ca or verify-full)"),
        new("connect_timeout", "PGCONNECT_TIMEOUT", "Timeout", convert: ToSeconds,
            hint: " (use a whole number of seconds from 0 to 1024)"),
        new("options", "PGOPTIONS", "Options"),
        // No PGTARGETSESSIONATTRS fallback: Npgsql only honours target_session_attrs with several
        // hosts, so a machine-wide setting would make every single-host target fail to resolve.
        new("target_session_attrs", null, "Target Session Attributes",
            hint: " (use any, read-write, read-only, primary, standby or prefer-standby)"),
        new("sslrootcert", "PGSSLROOTCERT", "Root Certificate"),
        new("sslcert", "PGSSLCERT", "SSL Certificate"),
        new("sslkey", "PGSSLKEY", "SSL Key"),
        new("sslpassword", null, "SSL Password", isSecret: true),
        new("client_encoding", "PGCLIENTENCODING", "Client Encoding"),
        new("load_balance_hosts", "PGLOADBALANCEHOSTS", "Load Balance Hosts", convert: ToLoadBalancing,
            hint: " (use disable or random)"),
    ];

    static readonly IReadOnlyDictionary<string, LibpqParameter> ByName =
        All.ToDictionary(parameter => parameter.Name, StringComparer.OrdinalIgnoreCase);

    readonly Func<string, object> _convert;

    LibpqParameter(string name, string? environmentVariable, string? keyword, bool isSecret = false,
        Func<string, object>? convert = null, string hint = "")
    {
        Name = name;
        EnvironmentVariable = environmentVariable;
        Keyword = keyword;
        IsSecret = isSecret;
        Hint = hint;
        _convert = convert ?? (value => value);
    }

    /// <summary>The libpq name, as written in a URI query (<c>sslmode</c>).</summary>
    public string Name { get; }

    /// <summary>The libpq environment variable that supplies a missing value, if any.</summary>
    public string? EnvironmentVariable { get; }

    /// <summary>The canonical Npgsql keyword, or null for parameters handled specially.</summary>
    public string? Keyword { get; }

    /// <summary>Whether the value must never be echoed in a message.</summary>
    public bool IsSecret { get; }

    /// <summary>Appended to an "invalid value" message to say what is valid.</summary>
    public string Hint { get; }

    /// <summary>Parameters that have an environment variable and map straight to an Npgsql keyword.</summary>
    public static IEnumerable<LibpqParameter> WithEnvironmentFallback
        => All.Where(parameter => parameter.EnvironmentVariable is not null && parameter.Keyword is not null);

    public static LibpqParameter Get(string name) => ByName[name];

    public static bool TryGet(string name, out LibpqParameter parameter) => ByName.TryGetValue(name, out parameter!);

    /// <summary>Turns the libpq spelling of a value into what Npgsql expects; throws FormatException if invalid.</summary>
    public object Convert(string value) => _convert(value);

    static object ToSslMode(string value)
        => SslModes.TryGetValue(value, out var mode) ? mode : throw new FormatException();

    static object ToSeconds(string value)
        => int.Parse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture);

    static object ToLoadBalancing(string value) => value.ToLowerInvariant() switch
    {
        "disable" => false,
        "random" => true,
        _ => throw new FormatException(),
    };
}
