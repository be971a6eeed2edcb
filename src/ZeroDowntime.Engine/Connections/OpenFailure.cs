using System.Net.Sockets;
using Npgsql;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Connections;

/// <summary>Turns what Npgsql throws while opening a connection into an error a DBA can act on.</summary>
internal static class OpenFailure
{
    const string InvalidPassword = "28P01";
    const string InvalidAuthorization = "28000";
    const string InvalidCatalogName = "3D000";

    /// <summary>Returns the ZdtException to throw instead of <paramref name="error"/>, or null to let it through.</summary>
    public static ZdtException? Translate(Exception error, ConnectionTarget target)
    {
        if (error is OperationCanceledException)
        {
            return null; // The caller asked to stop; that is not a connection problem.
        }

        var user = target.Username;
        var at = $"{target.Endpoint}/{target.Database}";

        // With several hosts, Npgsql wraps each host's failure in an AggregateException, so look inside.
        if (FindServerError(error) is { } server)
        {
            switch (server.SqlState)
            {
                case InvalidPassword:
                    return Create(ConnectionErrors.AuthenticationFailed, ErrorKind.AuthenticationError,
                        $"Password authentication failed for user '{user}' at {at}.", error, target);
                case InvalidAuthorization:
                    return Create(ConnectionErrors.AuthenticationFailed, ErrorKind.AuthenticationError,
                        $"Authentication failed for user '{user}' at {at}: {server.MessageText}", error, target);
                case InvalidCatalogName:
                    return Create(ConnectionErrors.DatabaseNotFound, ErrorKind.ObjectNotFound,
                        $"Database '{target.Database}' does not exist at {target.Endpoint}.", error, target);
            }
        }

        if (error is PostgresException refused)
        {
            return Create(ConnectionErrors.ConnectionFailed, ErrorKind.ConnectionError,
                $"The server at {target.Endpoint} refused the connection for user '{user}' to database '{target.Database}': {refused.SqlState}: {refused.MessageText}",
                error, target);
        }

        // Npgsql raises this itself (no SQLSTATE) when the server asks for a password we do not have.
        if (error is NpgsqlException { InnerException: null } missing
            && missing.Message.StartsWith("No password has been provided", StringComparison.Ordinal))
        {
            return Create(ConnectionErrors.AuthenticationFailed, ErrorKind.AuthenticationError,
                $"The server at {at} requires a password for user '{user}', but none was supplied. Pass a credential, set PGPASSWORD or use a password file.",
                error, target);
        }

        if (error is NpgsqlException or SocketException or TimeoutException or IOException)
        {
            return Create(ConnectionErrors.ConnectionFailed, ErrorKind.ConnectionError,
                $"Could not connect to {target.Endpoint}: {Describe(error, target.TimeoutSeconds)}", error, target);
        }

        return null;
    }

    static ZdtException Create(string errorId, ErrorKind kind, string message, Exception inner, ConnectionTarget target)
        => new(errorId, kind, target.Scrub(message), inner) { TargetObject = target.ToString() };

    static PostgresException? FindServerError(Exception error) => error switch
    {
        PostgresException server => server,
        AggregateException many => many.InnerExceptions.Select(FindServerError).FirstOrDefault(found => found is not null),
        { InnerException: { } inner } => FindServerError(inner),
        _ => null,
    };

    /// <summary>The underlying reason in one line, e.g. "Failed to connect to 127.0.0.1:5433 (Connection refused)".</summary>
    static string Describe(Exception error, int timeoutSeconds) => error switch
    {
        AggregateException many => string.Join("; ", many.InnerExceptions.Select(inner => Describe(inner, timeoutSeconds))),
        TimeoutException => $"timed out after {timeoutSeconds} s",
        // Npgsql's "Unable to connect to a suitable host. Check inner exception..." only points at the hosts' own errors.
        NpgsqlException { InnerException: AggregateException many } => Describe(many, timeoutSeconds),
        NpgsqlException { InnerException: { } inner } => $"{error.Message} ({Describe(inner, timeoutSeconds)})",
        _ => error.Message,
    };
}
