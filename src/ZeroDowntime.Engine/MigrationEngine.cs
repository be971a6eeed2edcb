using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Observing;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine;

// CONTRACT STUB: signatures fixed, bodies being written.

/// <summary>
/// The one entry point the cmdlets, the bench and the tests use. Every phase is planned first
/// (Plan*Async, read-only: what -WhatIf shows) and then run (RunAsync) under the ledger's
/// advisory lock and the lock-safe executor.
/// </summary>
public sealed class MigrationEngine
{
    public MigrationEngine(ConnectionTarget target, EngineOptions? options = null, IMigrationObserver? observer = null)
    {
        Target = target;
        Options = options ?? new EngineOptions();
        Observer = observer ?? NullObserver.Instance;
    }

    public ConnectionTarget Target { get; }

    public EngineOptions Options { get; }

    public IMigrationObserver Observer { get; }

    public Task<PhasePlan> PlanTableRenameAsync(TableRenameRequest request, CancellationToken cancellationToken = default)
        => throw new NotImplementedException();

    public Task<PhasePlan> PlanContractAsync(long migrationId, CancellationToken cancellationToken = default)
        => throw new NotImplementedException();

    public Task<PhasePlan> PlanUndoAsync(long migrationId, CancellationToken cancellationToken = default)
        => throw new NotImplementedException();

    /// <summary>Runs a plan made by one of the Plan*Async methods and returns the migration as the ledger now has it.</summary>
    public Task<Migration> RunAsync(PhasePlan plan, CancellationToken cancellationToken = default)
        => throw new NotImplementedException();

    public Task<IReadOnlyList<Migration>> GetMigrationsAsync(MigrationQuery query, CancellationToken cancellationToken = default)
        => throw new NotImplementedException();
}
