using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine;

/// <summary>
/// Removing old history from the ledger (Remove-MigrationHistory): finished migrations only, found
/// first (read-only: what -WhatIf lists), then deleted with their events.
/// </summary>
public sealed partial class MigrationEngine
{
    /// <summary>
    /// The finished migrations the request would remove, as they are now. Asked for one id, a
    /// migration that is not finished is refused (MigrationNotFinished) and an unknown id is
    /// MigrationNotFound; a finished one younger than OlderThan is simply not returned.
    /// </summary>
    public async Task<IReadOnlyList<Migration>> FindRemovableHistoryAsync(HistoryRemovalRequest request, CancellationToken cancellationToken = default)
    {
        var ct = cancellationToken;
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        if (request.Id is { } id)
        {
            var row = await _ledger.GetAsync(connection, id, ct).ConfigureAwait(false);
            if (!row.Phase.IsFinal())
            {
                throw new ZdtException(
                    ErrorIds.MigrationNotFinished,
                    ErrorKind.InvalidOperation,
                    $"Migration {row.Id} ({row.Operation} of {Sql.Ident.Qualify(row.Schema, row.Table)}) is in phase {row.Phase}, not finished: its ledger row is what resumes, completes or undoes it. Nothing was removed.")
                { TargetObject = row.Id };
            }
        }

        var rows = await _ledger.FindFinishedOlderThanAsync(connection, request.OlderThan, request.Id, request.Tag, ct).ConfigureAwait(false);
        var migrations = new List<Migration>(rows.Count);
        foreach (var row in rows)
        {
            migrations.Add(await ToMigrationAsync(connection, row, includeEvents: true, ct).ConfigureAwait(false));
        }

        return migrations;
    }

    /// <summary>
    /// Deletes these migrations with their events, each only if it is still finished and older than
    /// <paramref name="olderThan"/> (checked again in the deleting transaction). Returns the ids removed.
    /// </summary>
    public async Task<IReadOnlyList<long>> RemoveHistoryAsync(IReadOnlyCollection<long> migrationIds, TimeSpan olderThan, CancellationToken cancellationToken = default)
    {
        await using var connection = await Target.OpenAsync(cancellationToken).ConfigureAwait(false);
        var removed = await _ledger.DeleteFinishedAsync(connection, migrationIds, olderThan, cancellationToken).ConfigureAwait(false);
        if (removed.Count > 0)
        {
            Observer.Verbose($"Removed from the ledger {Sql.Ident.Quote(_ledger.SchemaName)}: migration(s) {string.Join(", ", removed)} and their events.");
        }

        return removed;
    }
}
