using Npgsql;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Connections;

/// <summary>
/// What has been gathered so far while resolving a <see cref="ConnectionTarget"/>: the values the
/// user set explicitly (so we know what is still missing), plus the libpq-style host and port
/// lists, which only become Npgsql's Host/Port once all sources have been read.
/// </summary>
internal sealed class ConnectionSettings
{
    readonly string? _credentialPassword;

    public ConnectionSettings(string? credentialPassword) => _credentialPassword = credentialPassword;

    /// <summary>Holds only the keywords that were set explicitly; Npgsql's Keys lists exactly those.</summary>
    public NpgsqlConnectionStringBuilder Builder { get; } = new();

    /// <summary>Hosts from a URI (hierarchical part or <c>?host=</c>); null when the URI named none.</summary>
    public IReadOnlyList<string>? Hosts { get; set; }

    /// <summary>Ports from a URI, one for all hosts or one per host; null when the URI named none.</summary>
    public IReadOnlyList<string>? Ports { get; set; }

    public string? FallbackApplicationName { get; set; }

    /// <summary>Whether a keyword has a non-empty value; libpq treats an empty value as missing too.</summary>
    public bool IsSet(string keyword)
        => Builder.Keys.Cast<string>().Contains(keyword, StringComparer.OrdinalIgnoreCase)
           && Builder[keyword] is not (null or "");

    /// <summary>Sets a libpq parameter; <paramref name="origin"/> says where it came from, for messages.</summary>
    public void Apply(LibpqParameter parameter, string value, string origin)
    {
        switch (parameter.Name)
        {
            case LibpqParameter.HostName:
                Hosts = value.Split(',');
                return;
            case LibpqParameter.PortName:
                Ports = value.Split(',');
                return;
            case LibpqParameter.FallbackApplicationName:
                FallbackApplicationName = value;
                return;
        }

        try
        {
            Builder[parameter.Keyword!] = parameter.Convert(value);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException or InvalidCastException)
        {
            // Deliberately without the inner exception: Npgsql's conversion errors quote the value.
            throw Invalid(parameter.IsSecret
                ? $"{origin} gives a value for {parameter.Name} that is not valid."
                : $"{origin} sets {parameter.Name} to '{value}', which is not valid{parameter.Hint}.");
        }
    }

    /// <summary>An InvalidConnectionString error, scrubbed of every password known so far.</summary>
    public ZdtException Invalid(string message)
        => ConnectionErrors.Invalid(message, new SecretScrubber(_credentialPassword, Builder.Password, Builder.SslPassword));
}
