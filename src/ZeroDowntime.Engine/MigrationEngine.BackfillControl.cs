using System.Globalization;
using ZeroDowntime.Engine.Backfill.Control;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Operations;

namespace ZeroDowntime.Engine;

/// <summary>
/// Operator control of a backfill from another session: pause, resume and retune. They set a state
/// on the migration's ledger row, which the running backfill reads between batches (BatchGate);
/// with no backfill running, the next Invoke-Backfill starts paused (a pause is kept, a retuning
/// is replaced by the new run's own parameters).
/// </summary>
public sealed partial class MigrationEngine
{
    public Task<Migration> SuspendBackfillAsync(long migrationId, CancellationToken cancellationToken = default)
        => ChangeBackfillControlAsync(
            migrationId,
            "backfill paused",
            (control, user) => control with { Paused = true, PausedBy = string.Create(CultureInfo.InvariantCulture, $"{user} at {DateTimeOffset.UtcNow:u}") },
            cancellationToken);

    public Task<Migration> ResumeBackfillAsync(long migrationId, CancellationToken cancellationToken = default)
        => ChangeBackfillControlAsync(migrationId, "backfill resumed", (control, _) => control with { Paused = false, PausedBy = null }, cancellationToken);

    public Task<Migration> SetBackfillThrottleAsync(long migrationId, BackfillRetune retune, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(retune);
        if (retune.BatchSize is <= 0 || retune.MaxLoad is < 0 || retune.Delay < TimeSpan.Zero || retune.TargetBatchTime <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(retune), retune, "Batch size and target batch time must be positive; delay and max load cannot be negative.");
        }

        return ChangeBackfillControlAsync(migrationId, "backfill retuned", (control, _) => retune.ApplyTo(control), cancellationToken);
    }

    private async Task<Migration> ChangeBackfillControlAsync(long migrationId, string action, Func<BackfillControl, string, BackfillControl> change, CancellationToken ct)
    {
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(connection, migrationId, ct).ConfigureAwait(false);
        if (!OperationRegistry.FromLedger(row).CanBackfillFrom(row.Phase))
        {
            throw new ZdtException(
                ErrorIds.PhaseOutOfOrder,
                ErrorKind.InvalidOperation,
                $"Migration {migrationId} ({row.Operation} of {Sql.Ident.Qualify(row.Schema, row.Table)}) is in phase {row.Phase}; a backfill can be paused, resumed or retuned only in the phases Invoke-Backfill runs in. Nothing was changed.")
            { TargetObject = migrationId };
        }

        var control = await _ledger.ChangeBackfillControlAsync(connection, migrationId, action, change, ct).ConfigureAwait(false);
        Observer.Verbose($"Migration {migrationId}: {action}; a running backfill applies it before its next batch (within about a second).");
        row = await _ledger.GetAsync(connection, migrationId, ct).ConfigureAwait(false);
        return await ToMigrationAsync(connection, row, includeEvents: false, ct).ConfigureAwait(false);
    }
}
