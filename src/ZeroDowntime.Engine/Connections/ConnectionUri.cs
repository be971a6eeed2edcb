namespace ZeroDowntime.Engine.Connections;

/// <summary>
/// Reads a libpq connection URI:
/// <c>postgresql://[user[:password]@][host][:port][,host2[:port2]...][/dbname][?param=value&amp;...]</c>.
/// </summary>
/// <remarks>
/// As in RFC 3986, '?', '/' and '@' inside a user name or password must be percent-encoded
/// (libpq requires the same). Every component is percent-decoded after it has been split off,
/// so an encoded Unix socket directory (%2Fvar%2Frun%2Fpostgresql) stays one host.
/// </remarks>
internal static class ConnectionUri
{
    const string Origin = "The connection URI";
    static readonly string[] Schemes = ["postgresql://", "postgres://"];

    public static bool IsUri(string connectionString)
        => Schemes.Any(scheme => connectionString.StartsWith(scheme, StringComparison.OrdinalIgnoreCase));

    public static void Parse(string uri, ConnectionSettings settings)
    {
        var rest = uri[(uri.IndexOf("://", StringComparison.Ordinal) + 3)..];

        string? query = null;
        var queryStart = rest.IndexOf('?');
        if (queryStart >= 0)
        {
            query = rest[(queryStart + 1)..];
            rest = rest[..queryStart];
        }

        string? path = null;
        var pathStart = rest.IndexOf('/');
        if (pathStart >= 0)
        {
            path = rest[(pathStart + 1)..];
            rest = rest[..pathStart];
        }

        // The last '@': a host never contains one, an unencoded password might.
        var at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            ParseUserInfo(rest[..at], settings);
            rest = rest[(at + 1)..];
        }

        ParseHosts(rest, settings);

        if (!string.IsNullOrEmpty(path))
        {
            settings.Apply(LibpqParameter.Get("dbname"), Decode(path), Origin);
        }

        if (query is not null)
        {
            ParseQuery(query, settings);
        }
    }

    static void ParseUserInfo(string userInfo, ConnectionSettings settings)
    {
        var colon = userInfo.IndexOf(':');
        var user = Decode(colon >= 0 ? userInfo[..colon] : userInfo);
        var password = colon >= 0 ? Decode(userInfo[(colon + 1)..]) : "";

        if (password.Length > 0)
        {
            // Set the password first so that any later error about this URI is scrubbed of it.
            settings.Apply(LibpqParameter.Get("password"), password, Origin);
        }
        if (user.Length > 0)
        {
            settings.Apply(LibpqParameter.Get("user"), user, Origin);
        }
    }

    static void ParseHosts(string hostList, ConnectionSettings settings)
    {
        if (hostList.Length == 0)
        {
            return;
        }

        var hosts = new List<string>();
        var ports = new List<string>();
        foreach (var entry in hostList.Split(','))
        {
            var (host, port) = SplitHostPort(entry, settings);
            hosts.Add(Decode(host));
            ports.Add(Decode(port));
        }

        // "postgresql://:5433/db" names a port but no host: the host still comes from PGHOST or the default.
        if (hosts.Any(host => host.Length > 0))
        {
            settings.Hosts = hosts;
        }
        if (ports.Any(port => port.Length > 0))
        {
            settings.Ports = ports;
        }
    }

    static (string Host, string Port) SplitHostPort(string entry, ConnectionSettings settings)
    {
        if (entry.StartsWith('['))
        {
            var close = entry.IndexOf(']');
            if (close < 0)
            {
                throw settings.Invalid($"{Origin} has an IPv6 address without its closing ']'.");
            }

            var afterAddress = entry[(close + 1)..];
            if (afterAddress.Length > 0 && afterAddress[0] != ':')
            {
                throw settings.Invalid($"{Origin} has unexpected text after the IPv6 address [{entry[1..close]}].");
            }
            return (entry[1..close], afterAddress.Length > 0 ? afterAddress[1..] : "");
        }

        var colon = entry.IndexOf(':');
        return colon >= 0 ? (entry[..colon], entry[(colon + 1)..]) : (entry, "");
    }

    static void ParseQuery(string query, ConnectionSettings settings)
    {
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=');
            var name = Decode(equals >= 0 ? pair[..equals] : pair);
            if (equals < 0)
            {
                throw settings.Invalid($"{Origin} has a parameter {ConnectionErrors.Quote(name)} without a value.");
            }
            if (!LibpqParameter.TryGet(name, out var parameter))
            {
                throw settings.Invalid($"{Origin} has an unknown parameter {ConnectionErrors.Quote(name)}.");
            }
            settings.Apply(parameter, Decode(pair[(equals + 1)..]), Origin);
        }
    }

    // Unlike HTML forms, libpq does not turn '+' into a space, and neither does UnescapeDataString.
    static string Decode(string component) => Uri.UnescapeDataString(component);
}
