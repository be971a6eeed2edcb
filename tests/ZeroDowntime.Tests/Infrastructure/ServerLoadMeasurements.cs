namespace ZeroDowntime.Tests.Infrastructure;

/// <summary>
/// Tests that measure the whole server's activity (the adaptive throttle reads every session's
/// commits): they run after the parallel collections, with nothing else on the server. Beside the
/// Pester suite or another class's bulk load, the load they inject is one of several, and what the
/// throttle then sees (a CI run read losses of 12-40% ± 15-37%) is the machine, not the test.
/// </summary>
[CollectionDefinition(nameof(ServerLoadMeasurements), DisableParallelization = true)]
public sealed class ServerLoadMeasurements
{
}
