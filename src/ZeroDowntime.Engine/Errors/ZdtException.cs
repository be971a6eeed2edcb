namespace ZeroDowntime.Engine.Errors;

/// <summary>
/// What kind of failure an engine error is. The names match PowerShell's ErrorCategory
/// members so the cmdlet layer can map them by name without the engine knowing PowerShell.
/// </summary>
public enum ErrorKind
{
    InvalidArgument,
    ObjectNotFound,
    ResourceExists,
    InvalidOperation,
    ResourceBusy,
    ConnectionError,
    AuthenticationError,
    PermissionDenied,
    InvalidData,
    NotImplemented,
    OperationStopped,
}

/// <summary>
/// An error the engine raises on purpose: it has a stable id (for scripts and error records),
/// a kind, and a message written for the DBA that never contains a password.
/// </summary>
public class ZdtException : Exception
{
    public ZdtException(string errorId, ErrorKind kind, string message, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Kind = kind;
    }

    /// <summary>A stable identifier such as "TableNotFound", used as the PowerShell error id.</summary>
    public string ErrorId { get; }

    public ErrorKind Kind { get; }

    /// <summary>The object the error is about (a qualified table name, a migration id), if any.</summary>
    public object? TargetObject { get; init; }
}
