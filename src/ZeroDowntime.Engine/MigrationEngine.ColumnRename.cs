using Npgsql;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Operations;
using ZeroDowntime.Engine.Operations.ColumnCopy;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine;

/// <summary>Column renames: planning (by strategy) and the parity check of every column copy (rename by copy, type change).</summary>
public sealed partial class MigrationEngine
{
    public Task<PhasePlan> PlanColumnRenameAsync(ColumnRenameRequest request, CancellationToken cancellationToken = default)
        => request.Strategy switch
        {
            RenameStrategy.Copy => PlanColumnRenameCopyAsync(request, cancellationToken),
            RenameStrategy.View => PlanColumnRenameViewAsync(request, cancellationToken),
            _ => throw new ZdtException(ErrorIds.StrategyNotAvailable, ErrorKind.NotImplemented, $"The {request.Strategy} strategy is not available in this build."),
        };

    private async Task<PhasePlan> PlanColumnRenameCopyAsync(ColumnRenameRequest request, CancellationToken ct)
    {
        var rename = new ColumnRename(new ColumnRename.Spec(request.Schema, request.Table, request.Column, request.NewName));
        var plan = await PlanExpandAsync(rename, request.Tag, ct).ConfigureAwait(false);

        // Said once, when the plan is made (and shown by -WhatIf), not again when it runs.
        foreach (var warning in rename.Warnings)
        {
            Observer.Warning(warning);
        }

        return plan;
    }

    /// <summary>Plans a column type change (in place when the server needs no rewrite, else by copy).</summary>
    public Task<PhasePlan> PlanColumnTypeChangeAsync(ColumnTypeChangeRequest request, CancellationToken cancellationToken = default)
        => PlanExpandAsync(
            new ColumnTypeChange(new ColumnTypeChange.Spec(request.Schema, request.Table, request.Column, request.Type) { Using = request.Using, ReverseUsing = request.ReverseUsing, Cascade = request.Cascade, RejectUnconvertibleWrites = request.RejectUnconvertibleWrites }),
            request.Tag,
            cancellationToken);

    /// <summary>
    /// Counts rows whose old and new column differ, records the result in the ledger, and moves a
    /// Backfilled migration to Verified when there are none (or a Verified one back to Backfilled
    /// when there are some). Changes no data.
    /// </summary>
    public async Task<ParityResult> TestColumnParityAsync(long migrationId, CancellationToken cancellationToken = default)
    {
        var ct = cancellationToken;
        var result = await CheckParityAsync(migrationId, ct).ConfigureAwait(false);
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        await _ledger.RecordParityAsync(connection, migrationId, result.RowsChecked, result.Mismatches, ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(connection, migrationId, ct).ConfigureAwait(false);
        var message = $"{result.Mismatches:N0} mismatches in {result.RowsChecked:N0} rows";
        // Verified is a phase of the copy rename only; an addition's contract re-counts by itself.
        var verifies = OperationRegistry.FromLedger(row).ContractFrom == MigrationPhase.Verified;
        if (result.InParity && row.Phase == MigrationPhase.Backfilled && verifies)
        {
            await _ledger.SetPhaseAsync(connection, null, migrationId, MigrationPhase.Backfilled, MigrationPhase.Verified, "parity verified", null, message, ct).ConfigureAwait(false);
        }
        else if (!result.InParity && row.Phase == MigrationPhase.Verified && verifies)
        {
            await _ledger.SetPhaseAsync(connection, null, migrationId, MigrationPhase.Verified, MigrationPhase.Backfilled, "parity lost", null, message, ct).ConfigureAwait(false);
        }
        else
        {
            await _ledger.AddEventAsync(connection, null, migrationId, "parity checked", row.Phase, row.Phase, null, message, ct).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>The parity scan alone: read-only, records nothing.</summary>
    internal async Task<ParityResult> CheckParityAsync(long migrationId, CancellationToken ct)
    {
        await using var connection = await Target.OpenAsync(ct).ConfigureAwait(false);
        var context = await CreateContextAsync(connection, ct).ConfigureAwait(false);
        var row = await _ledger.GetAsync(connection, migrationId, ct).ConfigureAwait(false);
        var operation = OperationRegistry.FromLedger(row);
        if (operation is not (IColumnCopy or AddColumn))
        {
            throw new ZdtException(ErrorIds.NotAColumnCopy, ErrorKind.InvalidOperation, $"Migration {migrationId} is a {row.Operation}; parity applies to column copies (a rename by copy, a type change) and to Add-Column with a backfill.") { TargetObject = migrationId };
        }

        if (row.Phase.IsFinal())
        {
            throw new ZdtException(ErrorIds.PhaseOutOfOrder, ErrorKind.InvalidOperation, $"Migration {migrationId} is {row.Phase}; there is nothing to compare any more.") { TargetObject = migrationId };
        }

        string oldColumn, newColumn, meaning;
        IReadOnlyList<ParityPart> parts;
        if (operation is IColumnCopy copy)
        {
            (oldColumn, newColumn) = copy.ParityColumns;
            parts = copy.ParityParts;
            meaning = $"have {Ident.Quote(oldColumn)} different from {Ident.Quote(newColumn)}{(parts.Count > 1 ? " (or, in a referencing table, its column different from its new column)" : "")}";
        }
        else
        {
            // An addition by backfill: the rows that existed before the expand and were not given their value.
            var table = await context.Catalog.ReadTableAsync(row.TableOid, ct).ConfigureAwait(false)
                ?? throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, $"The table of migration {migrationId} no longer exists.");
            var mismatch = ((AddColumn)operation).UnfilledRowsFilter(table)
                ?? throw new ZdtException(ErrorIds.NotAColumnCopy, ErrorKind.InvalidOperation, $"Migration {migrationId} added {Ident.Quote(row.Column ?? "")} without a backfill marker; there is nothing to count.") { TargetObject = migrationId };
            (oldColumn, newColumn) = (row.Column ?? "", "");
            parts = new[] { new ParityPart(row.TableOid, oldColumn, "", mismatch) };
            meaning = $"existed before {Ident.Quote(oldColumn)} was added and have not been given its value yet";
        }

        long rows = 0, mismatches = 0;
        var samples = new List<string>();
        var elapsed = TimeSpan.Zero;
        foreach (var part in parts)
        {
            var table = await context.Catalog.ReadTableAsync(part.TableOid, ct).ConfigureAwait(false)
                ?? throw new ZdtException(ErrorIds.TableGone, ErrorKind.ObjectNotFound, part.TableOid == row.TableOid ? $"The table of migration {migrationId} no longer exists." : $"A table migration {migrationId} changes (oid {part.TableOid}) no longer exists.");
            var label = part.NewColumn.Length == 0 ? "rows still to fill" : $"{Ident.Quote(part.OldColumn)} vs {Ident.Quote(part.NewColumn)}";

            // A partitioned table is checked leaf partition by leaf partition, as its backfill walks it.
            foreach (var checkedTable in await Operations.Partitions.PartitionLeaves.ReadAsync(context, table, $"The parity check of migration {migrationId} reads every row", ct).ConfigureAwait(false))
            {
                var partCount = await new ParityChecker(Target, Observer).CountAsync(checkedTable, BatchKey.Choose(checkedTable), part.Mismatch(checkedTable.QualifiedName), label, context.ServerVersion, ct).ConfigureAwait(false);
                rows += partCount.RowsChecked;
                mismatches += partCount.Mismatches;
                // The main table's keys as they are (a partitioned table's key names its row); another table's named with it.
                samples.AddRange(part.TableOid == row.TableOid ? partCount.SampleKeys : partCount.SampleKeys.Select(k => $"{table.QualifiedName} {k}"));
                elapsed += partCount.Elapsed;
            }
        }

        var count = new ParityCount(rows, mismatches, samples.Take(10).ToList(), elapsed);
        Observer.Verbose($"Parity of migration {migrationId}: {count.Mismatches:N0} mismatches in {count.RowsChecked:N0} rows ({count.Elapsed.TotalSeconds:0.0} s).");
        return new ParityResult
        {
            Id = migrationId,
            Schema = row.Schema,
            Table = row.Table,
            Column = oldColumn,
            NewName = newColumn,
            RowsChecked = count.RowsChecked,
            Mismatches = count.Mismatches,
            MismatchMeaning = meaning,
            SampleKeys = count.SampleKeys,
            CheckedAt = DateTimeOffset.UtcNow,
            Duration = count.Elapsed,
            Connection = Target,
        };
    }
}
