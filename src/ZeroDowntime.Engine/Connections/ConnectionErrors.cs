using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Connections;

/// <summary>The error ids this folder raises, and the one factory every parse error goes through.</summary>
internal static class ConnectionErrors
{
    internal const string InvalidConnectionString = ErrorIds.InvalidConnectionString;
    internal const string AuthenticationFailed = ErrorIds.AuthenticationFailed;
    internal const string DatabaseNotFound = ErrorIds.DatabaseNotFound;
    internal const string ConnectionFailed = ErrorIds.ConnectionFailed;

    internal static ZdtException Invalid(string message, SecretScrubber scrubber)
        => new(InvalidConnectionString, ErrorKind.InvalidArgument, scrubber.Scrub(message));

    /// <summary>
    /// A keyword or parameter name as it may be quoted in an error message. Names that do not look
    /// like a parameter name are not quoted: when a password containing ';', '?' or '@' is not
    /// escaped, the "name" the parser stumbles over is a piece of that password.
    /// </summary>
    internal static string Quote(string name)
        => name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ' ' or '-')
            ? $"'{name.Trim()}'"
            : "(name not shown, as it does not look like one; a password containing characters such as ; ? @ / & must be quoted or percent-encoded)";
}
