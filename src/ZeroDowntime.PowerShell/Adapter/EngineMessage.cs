using ZeroDowntime.Engine.Observing;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// Something the engine reported from its own thread, waiting to be written by the pipeline thread
/// (PowerShell's Write* methods throw when called from any other thread).
/// </summary>
internal abstract record EngineMessage;

internal sealed record VerboseMessage(string Text) : EngineMessage;

internal sealed record WarningMessage(string Text) : EngineMessage;

internal sealed record ProgressMessage(ProgressUpdate Update) : EngineMessage;

internal sealed record InformationMessage(string Text) : EngineMessage;
