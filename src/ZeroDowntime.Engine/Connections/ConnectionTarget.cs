using Npgsql;

namespace ZeroDowntime.Engine.Connections;

// CONTRACT STUB: being implemented by a helper (URI + keyword parsing, PG* env fallback,
// credential override, password scrubbing). Signatures below are fixed.

/// <summary>
/// Where the engine connects, resolved once from a connection string (Npgsql keywords or a
/// postgresql:// URI), the libpq environment variables and an optional credential.
/// Its public surface never exposes the password; the full connection string stays private.
/// </summary>
public sealed class ConnectionTarget
{
    public string Host { get; } = "";
    public int Port { get; }
    public string Database { get; } = "";
    public string Username { get; } = "";

    /// <summary>The connection string in Npgsql keyword form with the password removed.</summary>
    public string SafeConnectionString { get; } = "";

    public static ConnectionTarget Resolve(string? connectionString, string? userName = null, string? password = null, Func<string, string?>? environment = null)
        => throw new NotImplementedException();

    /// <summary>Opens a connection, turning failures into ZdtException with a scrubbed message.</summary>
    internal Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
        => throw new NotImplementedException();

    /// <summary>Removes the password from any text before it is shown or stored.</summary>
    internal string Scrub(string text) => text;

    public override string ToString() => $"{Username}@{Host}:{Port}/{Database}";
}
