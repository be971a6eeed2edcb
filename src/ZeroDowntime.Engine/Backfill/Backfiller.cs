using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using Polly;
using Polly.Retry;
using ZeroDowntime.Engine.Backfill.Control;
using ZeroDowntime.Engine.Backfill.Throttle;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Observing;
using ZeroDowntime.Engine.Sql;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Backfill;

/// <summary>What a backfill run did.</summary>
internal sealed record BackfillOutcome(long RowsUpdated, long RowsScanned, int Batches, TimeSpan Elapsed, TimeSpan Paused, bool Finished, BackfillStopReason? StoppedBy = null, string? StopMessage = null)
{
    /// <summary>The batch size the walk had adapted to when it finished: where the next table (partition) of the run starts.</summary>
    public int? BatchSize { get; init; }
}

/// <summary>
/// Fills a column for the rows that existed before the expand, in small batches that each commit
/// on their own with their checkpoint, so the application never waits long and a crash loses nothing.
/// Bounds are fixed at the start (rows inserted later are filled by the trigger or the default,
/// so the walk ends even under heavy inserts). Rows the application has locked are skipped
/// (SKIP LOCKED: we never queue behind the application) and retried after the walk, so none is missed.
/// </summary>
internal sealed class Backfiller
{
    /// <summary>The longest a batch waits on a row the application holds before redoing itself without it.</summary>
    private const long RowLockTimeoutMilliseconds = 50;

    private readonly ConnectionTarget _target;
    private readonly MigrationLedger _ledger;
    private readonly EngineOptions _engineOptions;
    private readonly IMigrationObserver _observer;

    public Backfiller(ConnectionTarget target, MigrationLedger ledger, EngineOptions engineOptions, IMigrationObserver observer)
    {
        _target = target;
        _ledger = ledger;
        _engineOptions = engineOptions;
        _observer = observer;
    }

    /// <summary>
    /// The SQL of one batch, for -WhatIf and the script export: the statement every batch runs, then
    /// the one a batch is redone with when it meets rows the application holds locked.
    /// </summary>
    public static IReadOnlyList<string> DescribeBatch(TableInfo table, BatchKey key, BackfillDesign design)
        => key.IsCtid
            ? new[] { CtidBatchSql(table, design, skipLocked: false), CtidBatchSql(table, design, skipLocked: true) }
            : new[] { KeyBatchSql(table, key, design, hasLower: true, skipLocked: false), KeyBatchSql(table, key, design, hasLower: true, skipLocked: true) };

    /// <summary>
    /// Walks one table. <paramref name="pacer"/> is the run's throttle, shared by every table it
    /// walks (started once, by the first: <paramref name="startPacer"/>), so a table of many small
    /// partitions is paced as the one table it is. <paramref name="done"/>: the tables of this walk
    /// already finished, recorded in a new checkpoint.
    /// </summary>
    public async Task<BackfillOutcome> RunAsync(long migrationId, TableInfo table, BatchKey key, BackfillDesign design, BackfillCheckpoint? checkpoint, IReadOnlyList<uint> done, BackfillPacer pacer, bool startPacer, BackfillOptions options, long rowsEstimated, long rowsAlreadyDone, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        checkpoint ??= await StartAsync(migrationId, table, key, done, ct).ConfigureAwait(false);
        if (!checkpoint.KeyColumns.SequenceEqual(key.Columns))
        {
            throw new Errors.ZdtException(
                ErrorIds.BackfillKeyChanged,
                Errors.ErrorKind.InvalidOperation,
                $"The backfill of migration {migrationId} was walking {table.QualifiedName} by ({string.Join(", ", checkpoint.KeyColumns)}), but the table's key is now {key}. Nothing was changed.");
        }

        var activity = $"Backfill {table.QualifiedName}: {design.Description}";
        var gate = new BatchGate(_target, _ledger, _observer, migrationId, activity, options);
        await gate.StartAsync(ct).ConfigureAwait(false);
        try
        {
            return await WalkAsync(migrationId, table, key, design, checkpoint, options, rowsEstimated, rowsAlreadyDone, gate, pacer, startPacer, activity, total, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or NpgsqlException or ZdtException)
        {
            // The heartbeat must not go on saying "Running" for a run that is over.
            var why = e is OperationCanceledException ? "interrupted (cancelled); the batch in flight was rolled back" : "failed: " + _target.Scrub(e.Message);
            try
            {
                await gate.EndAsync(BackfillState.Stopped, $"{why}; {BackfillResume.Advice(migrationId)}", default, CancellationToken.None).ConfigureAwait(false);
            }
            catch (NpgsqlException)
            {
                // The server is what failed; the original error says more than this one would.
            }

            throw;
        }
    }

    private async Task<BackfillOutcome> WalkAsync(long migrationId, TableInfo table, BatchKey key, BackfillDesign design, BackfillCheckpoint checkpoint, BackfillOptions options, long rowsEstimated, long rowsAlreadyDone, BatchGate gate, BackfillPacer pacer, bool startPacer, string activity, Stopwatch total, CancellationToken ct)
    {
        var batchSize = options.BatchSize ?? Math.Clamp(checkpoint.BatchSize ?? options.InitialBatchSize, options.MinBatchSize, options.MaxBatchSize);
        long updated = 0, scanned = 0;
        var batches = 0;
        var retry = TransientRetry();
        var report = new BatchReport(0, null, TimeSpan.Zero, batchSize);

        // Wall-clock time between two commits goes to the ledger with the second (backfill_seconds),
        // the pauses in it to the checkpoint as well: rate and duration include every pause.
        var sinceCommit = Stopwatch.StartNew();
        var paused = startPacer ? await pacer.StartAsync(ct).ConfigureAwait(false) : TimeSpan.Zero;
        var pausedTotal = TimeSpan.Zero;

        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (checkpoint.Walked && checkpoint.Deferred.Count == 0)
            {
                if (!design.ConfirmWithCleanPass || !key.IsCtid
                    || await NextPassAsync(migrationId, table, checkpoint, ct).ConfigureAwait(false) is not { } again)
                {
                    break;
                }

                checkpoint = again;
                continue;
            }

            if (options.MaxBatches is { } max && batches >= max)
            {
                var message = $"stopped after {batches} batches (-MaxBatches); {BackfillResume.Advice(migrationId)}";
                await gate.EndAsync(BackfillState.Stopped, message, report, ct).ConfigureAwait(false);
                return new BackfillOutcome(updated, scanned, batches, total.Elapsed, pausedTotal + paused, false, BackfillStopReason.MaxBatches, message);
            }

            // Between batches: stop (time box, SIGTERM), wait (pause, load, replicas), retune.
            var decision = await gate.BeforeBatchAsync(report with { Throttle = pacer.Describe() }, ct).ConfigureAwait(false);
            paused += decision.Waited;
            var gateTransactions = decision.Transactions;
            if (decision.Stop is { } stop)
            {
                await gate.EndAsync(BackfillState.Stopped, decision.StopMessage, report, CancellationToken.None).ConfigureAwait(false);
                return new BackfillOutcome(updated, scanned, batches, total.Elapsed, pausedTotal + paused, false, stop, decision.StopMessage);
            }

            options = decision.Options;
            var started = Stopwatch.StartNew();
            var size = options.BatchSize ?? batchSize;
            var current = checkpoint with { BatchSize = size, PausedSeconds = checkpoint.PausedSeconds + paused.TotalSeconds };
            var result = await retry.ExecuteAsync(
                async token => current.Walked
                    ? await RetryDeferredAsync(migrationId, table, key, design, current, sinceCommit, token).ConfigureAwait(false)
                    : await RunBatchOrSkipLockedAsync(migrationId, table, key, design, current, size, sinceCommit, token).ConfigureAwait(false),
                ct).ConfigureAwait(false);
            sinceCommit.Restart();
            pausedTotal += paused;
            paused = TimeSpan.Zero;
            var elapsed = started.Elapsed;
            checkpoint = result.Checkpoint;
            batches++;
            updated += result.Updated;
            scanned += result.Scanned;

            if (options.BatchSize is null && !current.Walked && result.Scanned >= size && elapsed > TimeSpan.Zero)
            {
                // Move toward the size that takes TargetBatchTime, at most doubling or halving per batch
                // so one slow batch (a checkpoint flush, a vacuum) does not swing it wildly.
                var ideal = size * (options.TargetBatchTime.TotalMilliseconds / elapsed.TotalMilliseconds);
                batchSize = (int)Math.Clamp(ideal, Math.Max(options.MinBatchSize, size / 2.0), Math.Min(options.MaxBatchSize, size * 2.0));
            }

            gate.BatchDone(elapsed);
            report = ReportProgress(activity, rowsAlreadyDone + scanned, rowsEstimated, scanned, total.Elapsed, checkpoint) with { LastBatch = elapsed, BatchSize = size };
            if (current.Walked && result.Updated == 0 && checkpoint.Deferred.Count > 0)
            {
                // Still locked by the application: wait a little before asking again.
                await Task.Delay(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false);
                paused += TimeSpan.FromMilliseconds(200);
            }
            else if (!checkpoint.Walked || checkpoint.Deferred.Count > 0)
            {
                // An operator's retuning (Set-BackfillThrottle) is an explicit pace: it replaces the throttle.
                paused += await PaceAsync(pacer, options, elapsed, result.Transactions + gateTransactions, ct).ConfigureAwait(false);
            }
        }

        await gate.EndAsync(BackfillState.Finished, null, report with { EtaSeconds = 0 }, ct).ConfigureAwait(false);
        _observer.Progress(new ProgressUpdate(activity, "done", 100, 0, Completed: true));
        return new BackfillOutcome(updated, scanned, batches, total.Elapsed, pausedTotal + paused, true) { BatchSize = batchSize };
    }

    /// <summary>
    /// The pause after a batch: the adaptive throttle's, or an explicit -Delay (an operator's
    /// retuning is an explicit pace and replaces the throttle). A stop request (SIGTERM, Ctrl+C)
    /// cuts it short, so the run stops at once at this batch boundary.
    /// </summary>
    private static async Task<TimeSpan> PaceAsync(BackfillPacer pacer, BackfillOptions options, TimeSpan batchElapsed, int transactions, CancellationToken ct)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(ct, options.StopAfterBatch);
        var started = Stopwatch.StartNew();
        try
        {
            return options.IsAdaptive
                ? await pacer.AfterBatchAsync(batchElapsed, transactions, either.Token).ConfigureAwait(false)
                : await BackfillPacer.SleepAsync(options.Delay, either.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return started.Elapsed;
        }
    }

    /// <summary>
    /// What one batch did. Transactions: how many it ended on the server (a batch redone without
    /// locked rows ends two), for the throttle to take out of the server's counters.
    /// </summary>
    private sealed record BatchResult(long Scanned, long Updated, BackfillCheckpoint Checkpoint, int Transactions = 1);

    private async Task<BackfillCheckpoint> StartAsync(long migrationId, TableInfo table, BatchKey key, IReadOnlyList<uint> done, CancellationToken ct)
    {
        await using var connection = await _target.OpenAsync(ct).ConfigureAwait(false);
        BackfillCheckpoint checkpoint;
        if (key.IsCtid)
        {
            var pages = await PageCountAsync(connection, table, ct).ConfigureAwait(false);
            checkpoint = new BackfillCheckpoint { TableOid = table.Oid, Done = done, UpperPage = pages, Walked = pages == 0, Filenode = await FilenodeAsync(connection, table, ct).ConfigureAwait(false) };
        }
        else
        {
            await using var cmd = new NpgsqlCommand($"SELECT json_build_array({key.AsText()})::text FROM {table.QualifiedName} ORDER BY {string.Join(", ", key.Columns.Select(c => Ident.Quote(c) + " DESC"))} LIMIT 1", connection);
            var upper = (string?)await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
            checkpoint = new BackfillCheckpoint { TableOid = table.Oid, Done = done, KeyColumns = key.Columns, Upper = upper is null ? null : JsonSerializer.Deserialize<string[]>(upper), Walked = upper is null };
        }

        await _ledger.SaveCheckpointAsync(connection, migrationId, checkpoint, ct).ConfigureAwait(false);
        return checkpoint;
    }

    /// <summary>
    /// The end of a pass over ctid page ranges. Rows the application updates move to new ctids,
    /// behind the walk or past its upper bound; with a per-row marker (<see cref="BackfillDesign.ConfirmWithCleanPass"/>)
    /// the marker's trigger fills a pending row in the same UPDATE that moves it, so no pending row
    /// should be able to hide. Only writes that bypass triggers (session_replication_role = replica,
    /// logical replication's apply) or a rewrite of the table (VACUUM FULL, CLUSTER) could move one
    /// unfilled. So the walk is confirmed, not trusted: another pass follows until one finds no
    /// pending row and the table was not rewritten meanwhile. A clean pass only reads (an UPDATE
    /// whose WHERE matches nothing writes nothing). Returns the next pass's checkpoint, or null
    /// when this pass was the clean one.
    /// </summary>
    private async Task<BackfillCheckpoint?> NextPassAsync(long migrationId, TableInfo table, BackfillCheckpoint checkpoint, CancellationToken ct)
    {
        await using var connection = await _target.OpenAsync(ct).ConfigureAwait(false);
        var filenode = await FilenodeAsync(connection, table, ct).ConfigureAwait(false);
        if (checkpoint.PassFilled == 0 && filenode == checkpoint.Filenode)
        {
            _observer.Verbose($"Backfill of {table.QualifiedName}: pass {checkpoint.Pass + 1} found no row left to fill; every row that existed before the expand has its value.");
            return null;
        }

        var pages = await PageCountAsync(connection, table, ct).ConfigureAwait(false);
        var next = new BackfillCheckpoint { TableOid = table.Oid, Done = checkpoint.Done, UpperPage = pages, Walked = pages == 0, Filenode = filenode, Pass = checkpoint.Pass + 1, BatchSize = checkpoint.BatchSize, PausedSeconds = checkpoint.PausedSeconds };
        await _ledger.SaveCheckpointAsync(connection, migrationId, next, ct).ConfigureAwait(false);
        _observer.Verbose(filenode == checkpoint.Filenode
            ? $"Backfill of {table.QualifiedName}: pass {checkpoint.Pass + 1} filled {checkpoint.PassFilled:N0} row(s); walking the table again to confirm that none is left."
            : $"Backfill of {table.QualifiedName}: the table was rewritten during pass {checkpoint.Pass + 1} (its rows moved); walking it again.");
        return next;
    }

    private static async Task<long> FilenodeAsync(NpgsqlConnection connection, TableInfo table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_relation_filenode($1::regclass)::bigint", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = table.QualifiedName });
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    private static async Task<long> PageCountAsync(NpgsqlConnection connection, TableInfo table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = table.QualifiedName });
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    /// <summary>
    /// Most batches meet no row the application holds, so they update directly: locking every row
    /// first (FOR UPDATE) would write a lock record per row and cost about a tenth of the speed.
    /// A batch that does meet one gives up after the short row-lock timeout, rolls back whole, and
    /// is done again skipping the locked rows (SKIP LOCKED), which are retried after the walk.
    /// </summary>
    private async Task<BatchResult> RunBatchOrSkipLockedAsync(long migrationId, TableInfo table, BatchKey key, BackfillDesign design, BackfillCheckpoint checkpoint, int size, Stopwatch sinceCommit, CancellationToken ct)
    {
        try
        {
            return await RunBatchAsync(migrationId, table, key, design, checkpoint, size, skipLocked: false, sinceCommit, ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == "55P03")
        {
            _observer.Verbose($"A backfill batch of {table.QualifiedName} met rows the application holds locked; doing it again without them.");
            return await RunBatchAsync(migrationId, table, key, design, checkpoint, size, skipLocked: true, sinceCommit, ct).ConfigureAwait(false) with { Transactions = 2 };
        }
    }

    private async Task<BatchResult> RunBatchAsync(long migrationId, TableInfo table, BatchKey key, BackfillDesign design, BackfillCheckpoint checkpoint, int size, bool skipLocked, Stopwatch sinceCommit, CancellationToken ct)
    {
        // Not reset on return (a batch sets nothing beyond its transaction): a DISCARD ALL per
        // batch would be a transaction the throttle counts as another session's.
        await using var connection = await _target.OpenWithoutResetAsync(ct).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await SetLocalTimeoutsAsync(connection, tx, ct).ConfigureAwait(false);

        long scanned, updated;
        string? skippedJson;
        BackfillCheckpoint next;
        if (key.IsCtid)
        {
            var pages = Math.Max(1, size / 50);
            var to = Math.Min(checkpoint.UpperPage, checkpoint.NextPage + pages);
            await using var cmd = new NpgsqlCommand(CtidBatchSql(table, design, skipLocked), connection, tx);
            cmd.Parameters.Add(new NpgsqlParameter { Value = checkpoint.NextPage });
            cmd.Parameters.Add(new NpgsqlParameter { Value = to });
            (scanned, updated, _, skippedJson) = await ReadBatchAsync(cmd, ct).ConfigureAwait(false);
            next = checkpoint with { NextPage = to, Walked = to >= checkpoint.UpperPage, Deferred = Merge(checkpoint.Deferred, skippedJson), PassFilled = checkpoint.PassFilled + updated };
        }
        else
        {
            await using var cmd = new NpgsqlCommand(KeyBatchSql(table, key, design, hasLower: checkpoint.Last is not null, skipLocked), connection, tx);
            foreach (var value in (checkpoint.Last ?? Array.Empty<string>()).Concat(checkpoint.Upper!))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = NpgsqlDbType.Text });
            }

            cmd.Parameters.Add(new NpgsqlParameter { Value = size });
            string? high;
            (scanned, updated, high, skippedJson) = await ReadBatchAsync(cmd, ct).ConfigureAwait(false);
            var last = high is null ? checkpoint.Last : JsonSerializer.Deserialize<string[]>(high);
            next = checkpoint with { Last = last, Walked = scanned < size, Deferred = Merge(checkpoint.Deferred, skippedJson) };
        }

        await CommitWithCheckpointAsync(connection, tx, migrationId, updated, next, sinceCommit.Elapsed, ct).ConfigureAwait(false);
        return new BatchResult(scanned, updated, next);
    }

    private async Task<BatchResult> RetryDeferredAsync(long migrationId, TableInfo table, BatchKey key, BackfillDesign design, BackfillCheckpoint checkpoint, Stopwatch sinceCommit, CancellationToken ct)
    {
        await using var connection = await _target.OpenWithoutResetAsync(ct).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await SetLocalTimeoutsAsync(connection, tx, ct).ConfigureAwait(false);
        var chunk = checkpoint.Deferred.Take(500).ToList();
        var rest = checkpoint.Deferred.Skip(500).ToList();

        string sql;
        var parameters = new List<NpgsqlParameter>();
        if (key.IsCtid)
        {
            sql = DeferredCtidSql(table, design);
            parameters.Add(new NpgsqlParameter { Value = chunk.Select(k => k[0]).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        }
        else
        {
            var rows = new List<string>();
            foreach (var k in chunk)
            {
                rows.Add(key.ParameterRow(parameters.Count + 1));
                parameters.AddRange(k.Select(v => new NpgsqlParameter { Value = v, NpgsqlDbType = NpgsqlDbType.Text }));
            }

            sql = DeferredKeySql(table, key, design, string.Join(", ", rows));
        }

        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        cmd.Parameters.AddRange(parameters.ToArray());
        var (_, updated, _, skippedJson) = await ReadBatchAsync(cmd, ct).ConfigureAwait(false);
        var next = checkpoint with { Deferred = Merge(rest, skippedJson), PassFilled = checkpoint.PassFilled + updated };
        await CommitWithCheckpointAsync(connection, tx, migrationId, updated, next, sinceCommit.Elapsed, ct).ConfigureAwait(false);
        if (next.Deferred.Count > 0)
        {
            _observer.Verbose($"{next.Deferred.Count} row(s) of {table.QualifiedName} are still locked by the application; retrying them shortly.");
        }

        return new BatchResult(0, updated, next);
    }

    /// <summary>
    /// Commits the batch together with its checkpoint: a batch is never done without being recorded,
    /// nor recorded without being done. <paramref name="elapsed"/> is the wall-clock time since the
    /// previous commit, pauses included, so backfill_seconds is the backfill's real duration.
    /// </summary>
    private async Task CommitWithCheckpointAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long migrationId, long updated, BackfillCheckpoint next, TimeSpan elapsed, CancellationToken ct)
    {
        await _ledger.RecordBatchAsync(connection, tx, migrationId, updated, next, elapsed, ct).ConfigureAwait(false);
        await _ledger.RequirePhaseLockAsync(connection, tx, migrationId, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// One batch: read the next rows of the key range once (their ctid, key and whether they still
    /// need filling) and update those that do by TID. Rows are reached only through the key index
    /// and TID scans (ctid = ANY(...)): a join back to the table would let the planner choose a hash
    /// join over the whole table, making every batch cost as much as the table. Keys of rows that
    /// needed filling but were not updated (skipped as locked, or updated by the application after
    /// they were read, which moves them to a new ctid) are reported, to be looked at again by key.
    /// </summary>
    private static string KeyBatchSql(TableInfo table, BatchKey key, BackfillDesign design, bool hasLower, bool skipLocked)
    {
        var n = key.Columns.Count;
        var lower = hasLower ? $"{key.RowExpression("t")} > {key.ParameterRow(1)} AND " : "";
        var upperFrom = hasLower ? n + 1 : 1;
        var pendingTids = "ARRAY(SELECT zdt_tid FROM r WHERE zdt_pending)";
        var update = skipLocked
            ? $"""
                todo AS (
                    SELECT t.ctid AS tid FROM {table.QualifiedName} t
                    WHERE t.ctid = ANY ({pendingTids}) AND {design.PendingFilter("t")} FOR UPDATE OF t SKIP LOCKED
                ), done AS (
                    UPDATE {table.QualifiedName} AS t SET {design.SetClause("t")} WHERE t.ctid = ANY (ARRAY(SELECT tid FROM todo)) RETURNING {key.OrderBy("t")}
                )
                """
            : $"""
                done AS (
                    UPDATE {table.QualifiedName} AS t SET {design.SetClause("t")}
                    WHERE t.ctid = ANY ({pendingTids}) AND {design.PendingFilter("t")} RETURNING {key.OrderBy("t")}
                )
                """;
        return $"""
            WITH r AS (
                SELECT t.ctid AS zdt_tid, {key.OrderBy("t")}, ({design.PendingFilter("t")}) AS zdt_pending FROM {table.QualifiedName} t
                WHERE {lower}{key.RowExpression("t")} <= {key.ParameterRow(upperFrom)}
                ORDER BY {key.OrderBy("t")} LIMIT ${upperFrom + n}
            ), {update}
            SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM done),
                   (SELECT json_build_array({key.AsText("r")}) FROM r ORDER BY {OrderDescending(key, "r")} LIMIT 1)::text,
                   (SELECT json_agg(json_build_array({key.AsText("r")})) FROM r
                    WHERE zdt_pending AND NOT EXISTS (SELECT 1 FROM done d WHERE {key.RowExpression("d")} = {key.RowExpression("r")}))::text
            """;
    }

    private static string DeferredKeySql(TableInfo table, BatchKey key, BackfillDesign design, string valueRows)
        => $"""
            WITH r ({key.OrderBy()}) AS (VALUES {valueRows}
            ), todo AS (
                SELECT t.ctid AS tid FROM {table.QualifiedName} t JOIN r ON {key.RowExpression("t")} = {key.RowExpression("r")}
                WHERE {design.PendingFilter("t")} FOR UPDATE OF t SKIP LOCKED
            ), done AS (
                UPDATE {table.QualifiedName} AS t SET {design.SetClause("t")} WHERE t.ctid = ANY (ARRAY(SELECT tid FROM todo)) RETURNING 1
            )
            SELECT 0::bigint, (SELECT count(*) FROM done), NULL::text,
                   (SELECT json_agg(json_build_array({key.AsText("t")})) FROM {table.QualifiedName} t JOIN r ON {key.RowExpression("t")} = {key.RowExpression("r")}
                    WHERE {design.PendingFilter("t")} AND t.ctid NOT IN (SELECT tid FROM todo))::text
            """;

    private static string CtidBatchSql(TableInfo table, BackfillDesign design, bool skipLocked)
    {
        const string range = "t.ctid >= format('(%s,0)', $1::bigint)::tid AND t.ctid < format('(%s,0)', $2::bigint)::tid";
        var scanned = $"SELECT count(*) FROM {table.QualifiedName} t WHERE {range}";
        if (!skipLocked)
        {
            // A row the application updates meanwhile moves to a new ctid with the trigger's (or the
            // default's) value already in it; one it holds locked makes the batch time out and retry below.
            return $"""
                WITH done AS (
                    UPDATE {table.QualifiedName} AS t SET {design.SetClause("t")} WHERE {range} AND {design.PendingFilter("t")} RETURNING 1
                )
                SELECT ({scanned}), (SELECT count(*) FROM done), NULL::text, NULL::text
                """;
        }

        return $"""
            WITH todo AS (
                SELECT t.ctid AS tid FROM {table.QualifiedName} t
                WHERE {range} AND {design.PendingFilter("t")} FOR UPDATE OF t SKIP LOCKED
            ), done AS (
                UPDATE {table.QualifiedName} AS t SET {design.SetClause("t")} WHERE t.ctid = ANY (ARRAY(SELECT tid FROM todo)) RETURNING 1
            )
            SELECT ({scanned}), (SELECT count(*) FROM done), NULL::text,
                   (SELECT json_agg(json_build_array(t.ctid::text)) FROM {table.QualifiedName} t
                    WHERE {range} AND {design.PendingFilter("t")} AND t.ctid NOT IN (SELECT tid FROM todo))::text
            """;
    }

    private static string DeferredCtidSql(TableInfo table, BackfillDesign design)
        => $"""
            WITH todo AS (
                SELECT t.ctid AS tid FROM {table.QualifiedName} t
                WHERE t.ctid = ANY ($1::text[]::tid[]) AND {design.PendingFilter("t")} FOR UPDATE OF t SKIP LOCKED
            ), done AS (
                UPDATE {table.QualifiedName} AS t SET {design.SetClause("t")} WHERE t.ctid = ANY (ARRAY(SELECT tid FROM todo)) RETURNING 1
            )
            SELECT 0::bigint, (SELECT count(*) FROM done), NULL::text,
                   (SELECT json_agg(json_build_array(t.ctid::text)) FROM {table.QualifiedName} t
                    WHERE t.ctid = ANY ($1::text[]::tid[]) AND {design.PendingFilter("t")} AND t.ctid NOT IN (SELECT tid FROM todo))::text
            """;

    private static string OrderDescending(BatchKey key, string alias)
        => string.Join(", ", key.Columns.Select(c => alias + "." + Ident.Quote(c) + " DESC"));

    private static async Task<(long Scanned, long Updated, string? Last, string? Skipped)> ReadBatchAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        return (
            reader.GetInt64(0),
            reader.GetInt64(1),
            reader.IsDBNull(2) ? null : reader.GetString(2),
            reader.IsDBNull(3) ? null : reader.GetString(3));
    }

    private static IReadOnlyList<IReadOnlyList<string>> Merge(IReadOnlyList<IReadOnlyList<string>> deferred, string? skippedJson)
    {
        if (skippedJson is null)
        {
            return deferred;
        }

        var skipped = JsonSerializer.Deserialize<string[][]>(skippedJson) ?? Array.Empty<string[]>();
        return deferred.Concat(skipped).ToList();
    }

    private async Task SetLocalTimeoutsAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        // lock_timeout: a batch that meets a row the application holds gives up quickly (and is redone
        // skipping it), and one queued behind someone's DDL gives up instead of extending the queue.
        // statement_timeout: lifted; a batch's length is bounded by its adaptive size (TargetBatchTime),
        // and a database or role statement_timeout below that would cancel every batch.
        var milliseconds = Math.Min((long)_engineOptions.LockTimeout.TotalMilliseconds, RowLockTimeoutMilliseconds);
        await using var cmd = new NpgsqlCommand($"SET LOCAL lock_timeout = '{milliseconds}ms'; SET LOCAL statement_timeout = 0", connection, tx);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private ResiliencePipeline TransientRetry() => new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            // Lock timeouts (someone's DDL), deadlocks and serialization failures roll the batch back
            // whole, checkpoint included, so trying the same batch again is always safe.
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is PostgresException { SqlState: "55P03" or "40P01" or "40001" }),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(100),
            MaxDelay = TimeSpan.FromSeconds(5),
            MaxRetryAttempts = 50,
            OnRetry = args =>
            {
                _observer.Verbose($"Backfill batch rolled back ({(args.Outcome.Exception as PostgresException)?.MessageText}); retrying in {args.RetryDelay.TotalMilliseconds:0} ms.");
                return ValueTask.CompletedTask;
            },
        })
        .Build();

    private BatchReport ReportProgress(string activity, long done, long estimate, long scannedThisRun, TimeSpan elapsed, BackfillCheckpoint checkpoint)
    {
        var rate = elapsed.TotalSeconds > 0 ? scannedThisRun / elapsed.TotalSeconds : 0;
        var percent = estimate > 0 ? (int)Math.Clamp(done * 100 / estimate, 0, 99) : -1;
        var remaining = rate > 0 && estimate > done ? (int)((estimate - done) / rate) : -1;
        var deferred = checkpoint.Deferred.Count > 0 ? $", {checkpoint.Deferred.Count} locked row(s) deferred" : "";
        _observer.Progress(new ProgressUpdate(
            activity,
            string.Create(CultureInfo.InvariantCulture, $"{done:N0} of ~{estimate:N0} rows, {rate:N0} rows/s{deferred}"),
            percent,
            remaining));
        return new BatchReport(rate, remaining >= 0 ? remaining : null, TimeSpan.Zero, 0);
    }
}
