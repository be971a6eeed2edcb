using System.Management.Automation;
using System.Reflection;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>How engine failures become PowerShell error records.</summary>
internal static class EngineErrors
{
    /// <summary>The error id of every failure the engine did not raise on purpose.</summary>
    public const string UnexpectedErrorId = "UnexpectedError";

    /// <summary>
    /// Failures no input object of the command can escape (the server cannot be reached, the
    /// ledger cannot be trusted): they end the command with a terminating error. Every other
    /// failure is about one input object and is written as a non-terminating error.
    /// </summary>
    private static readonly HashSet<string> CommandWide = new(StringComparer.Ordinal)
    {
        ErrorIds.InvalidConnectionString,
        ErrorIds.AuthenticationFailed,
        ErrorIds.DatabaseNotFound,
        ErrorIds.ConnectionFailed,
        ErrorIds.LedgerNotTrusted,
        ErrorIds.LedgerCreationRefused,
    };

    /// <summary>True when the error ends the whole command (see <see cref="CommandWide"/>).</summary>
    public static bool EndsCommand(ErrorRecord record) => CommandWide.Contains(ErrorIdOf(record));

    /// <summary>The error's own id: FullyQualifiedErrorId up to the command name PowerShell appends.</summary>
    public static string ErrorIdOf(ErrorRecord record) => record.FullyQualifiedErrorId.Split(',')[0];

    public static ErrorRecord ToErrorRecord(Exception exception, object? fallbackTarget)
        => WithAdvice(Shape(Unwrap(exception), fallbackTarget));

    /// <summary>An error record the module makes itself (not from an engine exception), with its advice.</summary>
    public static ErrorRecord Create(string errorId, ErrorKind kind, string message, object? target)
        => WithAdvice(new ErrorRecord(new ZdtException(errorId, kind, message) { TargetObject = target }, errorId, CategoryOf(kind), target));

    /// <summary>Every record gets a RecommendedAction: what to do next.</summary>
    public static ErrorRecord WithAdvice(ErrorRecord record)
    {
        record.ErrorDetails = new ErrorDetails(record.Exception?.Message ?? record.ToString())
        {
            RecommendedAction = ErrorAdvice.For(ErrorIdOf(record), record.CategoryInfo.Category),
        };
        return record;
    }

    private static ErrorRecord Shape(Exception exception, object? fallbackTarget)
        => exception switch
        {
            // The engine's own errors carry a stable id (what scripts test FullyQualifiedErrorId against)
            // and a kind named after an ErrorCategory member.
            ZdtException zdt => new ErrorRecord(zdt, zdt.ErrorId, CategoryOf(zdt.Kind), zdt.TargetObject ?? fallbackTarget),
            ArgumentException => new ErrorRecord(exception, UnexpectedErrorId, ErrorCategory.InvalidArgument, fallbackTarget),
            // Cancellation the user did not ask for (the user's Ctrl+C never gets here: it stops the pipeline).
            OperationCanceledException => new ErrorRecord(exception, UnexpectedErrorId, ErrorCategory.OperationStopped, fallbackTarget),
            TimeoutException => new ErrorRecord(exception, UnexpectedErrorId, ErrorCategory.OperationTimeout, fallbackTarget),
            _ => new ErrorRecord(exception, UnexpectedErrorId, ErrorCategory.NotSpecified, fallbackTarget),
        };

    /// <summary>
    /// ErrorKind names match ErrorCategory members by design; an unknown one (a kind added to the
    /// engine later) must still produce an error record, not an exception of its own.
    /// </summary>
    public static ErrorCategory CategoryOf(ErrorKind kind)
        => Enum.TryParse<ErrorCategory>(kind.ToString(), ignoreCase: false, out var category) && Enum.IsDefined(category)
            ? category
            : ErrorCategory.NotSpecified;

    private static Exception Unwrap(Exception exception)
    {
        while (true)
        {
            switch (exception)
            {
                case AggregateException { InnerExceptions.Count: 1 } aggregate:
                    exception = aggregate.InnerExceptions[0];
                    continue;
                case TargetInvocationException { InnerException: { } inner }:
                    exception = inner;
                    continue;
                default:
                    return exception;
            }
        }
    }
}

/// <summary>
/// Carries an engine failure, already shaped as an error record, out of RunEngine. The cmdlet then
/// decides how to report it: WriteError when the pipeline should go on with its next input object,
/// ThrowTerminatingError when the command cannot do anything more. Only engine failures are wrapped,
/// so PowerShell's own exceptions (pipeline stopped, -ErrorAction Stop) pass through untouched.
/// </summary>
internal sealed class EngineFailedException : Exception
{
    public EngineFailedException(ErrorRecord errorRecord)
        : base(errorRecord.Exception?.Message, errorRecord.Exception)
    {
        ErrorRecord = errorRecord;
    }

    public ErrorRecord ErrorRecord { get; }
}
