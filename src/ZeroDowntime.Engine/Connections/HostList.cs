using System.Globalization;

namespace ZeroDowntime.Engine.Connections;

/// <summary>
/// Turns libpq's separate host and port lists into Npgsql's Host/Port, and Npgsql's Host back into
/// a readable <c>host:port</c> list for messages.
/// </summary>
internal static class HostList
{
    internal const int DefaultPort = 5432;
    const string SocketDirectory = "/var/run/postgresql";

    /// <summary>
    /// Where libpq (as packaged on Debian, Ubuntu and RHEL) connects when no host is given: the local
    /// socket directory if there is one, otherwise TCP to localhost.
    /// </summary>
    public static string DefaultHost
        => !OperatingSystem.IsWindows() && Directory.Exists(SocketDirectory) ? SocketDirectory : "localhost";

    /// <summary>
    /// Combines hosts with ports the way libpq does: no port means 5432 for every host, a single port
    /// applies to every host, otherwise there must be one port per host. An empty entry means the default.
    /// </summary>
    public static (string Host, int Port) Combine(IReadOnlyList<string> hosts, IReadOnlyList<string> ports, ConnectionSettings settings)
    {
        if (ports.Count > 1 && ports.Count != hosts.Count)
        {
            throw settings.Invalid(
                $"There are {hosts.Count} host(s) but {ports.Count} ports; give one port for all hosts or one per host.");
        }

        var entries = hosts
            .Select((host, index) => (
                Host: host.Length > 0 ? host : DefaultHost,
                Port: ports.Count == 0 ? DefaultPort : ParsePort(ports[ports.Count == 1 ? 0 : index], settings)))
            .ToList();

        if (entries.Count == 1)
        {
            return (entries[0].Host, entries[0].Port);
        }

        // Npgsql reads "host:port" entries inside Host; entries without a port use Port.
        var commonPort = entries.Select(entry => entry.Port).Distinct().Count() == 1 ? entries[0].Port : DefaultPort;
        var host = string.Join(',', entries.Select(entry =>
            entry.Port == commonPort ? Bracket(entry.Host) : $"{Bracket(entry.Host)}:{entry.Port.ToString(CultureInfo.InvariantCulture)}"));
        return (host, commonPort);
    }

    /// <summary>Parses a port number, treating an empty value as the default port.</summary>
    public static int ParsePort(string port, ConnectionSettings settings)
    {
        if (port.Length == 0)
        {
            return DefaultPort;
        }
        if (int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number is > 0 and <= 65535)
        {
            return number;
        }
        throw settings.Invalid($"'{port}' is not a valid port number (use 1 to 65535).");
    }

    /// <summary>
    /// Npgsql's Host (possibly a list with per-host ports) as "host:port[,host:port...]", for
    /// ToString and messages. Splits entries the way Npgsql does: an unbracketed entry with a
    /// single ':' carries a port, an unbracketed entry with several is a bare IPv6 address.
    /// </summary>
    public static string Describe(string host, int port)
        => string.Join(',', host.Split(',').Select(entry => DescribeEntry(entry, port)));

    static string DescribeEntry(string entry, int defaultPort)
    {
        var defaultSuffix = ":" + defaultPort.ToString(CultureInfo.InvariantCulture);
        if (entry.StartsWith('['))
        {
            return entry.Contains("]:", StringComparison.Ordinal) ? entry : entry + defaultSuffix;
        }

        var colons = entry.Count(c => c == ':');
        return colons switch
        {
            0 => entry + defaultSuffix,
            1 => entry,
            _ => $"[{entry}]{defaultSuffix}",
        };
    }

    // Npgsql needs brackets around an IPv6 address inside a host list, or it would take the last
    // group of the address for a port.
    static string Bracket(string host)
        => host.Contains(':') && !host.StartsWith('/') && !host.StartsWith('[') ? $"[{host}]" : host;
}
