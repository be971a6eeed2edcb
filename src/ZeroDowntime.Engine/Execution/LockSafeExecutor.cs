using System.Diagnostics;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Polly;
using Polly.Retry;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Observing;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine.Execution;

/// <summary>
/// Runs DDL so that it can never cause a lock-queue outage. A DDL statement that waits for a lock
/// makes every later query on the table queue behind it; so each attempt runs with a short
/// lock_timeout, gives up quickly (nothing changed: the transaction rolls back), reports who was in
/// the way, and tries again after an exponentially growing, jittered pause, up to a cap.
/// </summary>
internal sealed class LockSafeExecutor
{
    private const string LockNotAvailable = "55P03";
    private const string DeadlockDetected = "40P01";

    private readonly ConnectionTarget _target;
    private readonly EngineOptions _options;
    private readonly IMigrationObserver _observer;

    public LockSafeExecutor(ConnectionTarget target, EngineOptions options, IMigrationObserver observer)
    {
        _target = target;
        _options = options;
        _observer = observer;
    }

    /// <summary>
    /// Runs one step. <paramref name="record"/> (the ledger's check of the phase lock and its event
    /// or phase change) runs inside the step's transaction, so schema and ledger commit together,
    /// before the step's lock is taken: its round trips are not time under a lock that stops the
    /// application, and a lost phase lock is found before any table is locked. For a
    /// non-transactional step it runs after the statements in its own transaction.
    /// </summary>
    public async Task<StepResult> RunAsync(DdlStep step, Func<NpgsqlConnection, NpgsqlTransaction?, CancellationToken, Task>? record, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var lockTimeout = step.LockTimeout ?? _options.LockTimeout;
        var attempts = 0;
        IReadOnlyList<BlockingSession> lastBlockers = Array.Empty<BlockingSession>();
        var heldFor = TimeSpan.Zero;

        var pipeline = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is PostgresException { SqlState: LockNotAvailable or DeadlockDetected }
                    && total.Elapsed < _options.LockRetryTimeout),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = _options.LockRetryInitialDelay,
                MaxDelay = _options.LockRetryMaxDelay,
                MaxRetryAttempts = int.MaxValue,
                OnRetry = args =>
                {
                    _observer.Information(string.Create(
                        CultureInfo.InvariantCulture,
                        $"'{step.Title}': could not get {step.Lock.ToSqlName()} on {step.LockTarget} within {lockTimeout.TotalMilliseconds:0} ms (attempt {attempts}); {DescribeBlockers(lastBlockers)}. Retrying in {args.RetryDelay.TotalMilliseconds:0} ms."));
                    return ValueTask.CompletedTask;
                },
            })
            .Build();

        try
        {
            await pipeline.ExecuteAsync(
                async token =>
                {
                    attempts++;
                    var attempt = await AttemptAsync(step, record, token).ConfigureAwait(false);
                    lastBlockers = attempt.Blockers;
                    if (attempt.Failure is not null)
                    {
                        throw attempt.Failure;
                    }

                    heldFor = attempt.HeldFor;
                },
                ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (PrivilegeErrors.IsPrivilegeError(e))
        {
            await using var connection = await _target.OpenAsync(CancellationToken.None).ConfigureAwait(false);
            throw await PrivilegeErrors.ForDdlAsync(connection, e, $"'{step.Title}'", step.LockTarget).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState is LockNotAvailable or DeadlockDetected)
        {
            throw new ZdtException(
                ErrorIds.LockRetryTimeoutExceeded,
                ErrorKind.ResourceBusy,
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"Gave up on '{step.Title}' after {attempts} attempts over {total.Elapsed.TotalSeconds:0.0} s: could not get {step.Lock.ToSqlName()} on {step.LockTarget} within the {lockTimeout.TotalMilliseconds:0} ms lock_timeout. {DescribeBlockers(lastBlockers)}. Nothing was changed by this step. Ask the blocking sessions to finish (or end them with pg_terminate_backend) and run the command again, or raise -LockRetryTimeout."),
                e)
            { TargetObject = lastBlockers };
        }

        _observer.Verbose(string.Create(CultureInfo.InvariantCulture, $"'{step.Title}' done after {attempts} attempt(s); its transaction held locks for {heldFor.TotalMilliseconds:0.0} ms."));
        return new StepResult(step.Title, attempts, total.Elapsed, heldFor);
    }

    private sealed record AttemptOutcome(Exception? Failure, IReadOnlyList<BlockingSession> Blockers, TimeSpan HeldFor);

    private async Task<AttemptOutcome> AttemptAsync(DdlStep step, Func<NpgsqlConnection, NpgsqlTransaction?, CancellationToken, Task>? record, CancellationToken ct)
    {
        await using var connection = await _target.OpenAsync(ct).ConfigureAwait(false);
        var pid = connection.ProcessID;
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sampler = SampleBlockersAsync(pid, step, sampling.Token);
        var held = Stopwatch.StartNew();
        try
        {
            if (step.Transactional)
            {
                // Opened before the lock is taken, so that opening it is not counted as holding it.
                await using var watch = step.Lock == LockLevel.AccessExclusive ? await LockReleaseWatch.OpenAsync(_target, ct).ConfigureAwait(false) : null;
                await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
                if (step.LiftsStatementTimeout)
                {
                    await ExecuteAsync(connection, tx, "SET LOCAL statement_timeout = 0", ct).ConfigureAwait(false);
                }

                await ExecuteAsync(connection, tx, $"SET LOCAL lock_timeout = '{(long)(step.LockTimeout ?? _options.LockTimeout).TotalMilliseconds}ms'", ct).ConfigureAwait(false);
                if (record is not null)
                {
                    await RecordOutsideStatementTimeoutAsync(connection, tx, record, ct).ConfigureAwait(false);
                }

                // From the first lock's grant on, only what needs the lock: the step's statements in
                // one round trip, then COMMIT.
                await LockTargetFirstAsync(connection, tx, step, held, ct).ConfigureAwait(false);
                if (step.Statements.Count > 0)
                {
                    await ExecuteAsync(connection, tx, InOneRoundTrip(step.Statements), ct, Unbounded(step)).ConfigureAwait(false);
                }

                if (watch is null)
                {
                    await tx.CommitAsync(ct).ConfigureAwait(false);
                }
                else
                {
                    var (heldFor, commitReturned) = await watch.CommitAsync(tx, pid, held, ct).ConfigureAwait(false);
                    if (commitReturned - heldFor >= TimeSpan.FromMilliseconds(1))
                    {
                        _observer.Verbose(string.Create(CultureInfo.InvariantCulture, $"'{step.Title}': its COMMIT returned {(commitReturned - heldFor).TotalMilliseconds:0.0} ms after the locks were released (the server removes the files of dropped relations after releasing the locks)."));
                    }

                    return new AttemptOutcome(null, Array.Empty<BlockingSession>(), heldFor);
                }
            }
            else
            {
                if (step.LiftsStatementTimeout)
                {
                    await ExecuteAsync(connection, null, "SET statement_timeout = 0", ct).ConfigureAwait(false);
                }

                await ExecuteAsync(connection, null, $"SET lock_timeout = '{(long)(step.LockTimeout ?? _options.LockTimeout).TotalMilliseconds}ms'", ct).ConfigureAwait(false);
                try
                {
                    held.Restart();
                    foreach (var statement in step.Statements)
                    {
                        await ExecuteAsync(connection, null, statement, ct, Unbounded(step)).ConfigureAwait(false);
                    }
                }
                catch (Exception) when (step.CleanupOnFailure.Count > 0)
                {
                    await CleanupAsync(connection, step, ct).ConfigureAwait(false);
                    throw;
                }
                finally
                {
                    await ResetTimeoutsAsync(connection).ConfigureAwait(false);
                }

                if (record is not null)
                {
                    await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
                    await record(connection, tx, ct).ConfigureAwait(false);
                    await tx.CommitAsync(ct).ConfigureAwait(false);
                }
            }

            return new AttemptOutcome(null, Array.Empty<BlockingSession>(), held.Elapsed);
        }
        catch (PostgresException e) when (e.SqlState is LockNotAvailable or DeadlockDetected)
        {
            await sampling.CancelAsync().ConfigureAwait(false);
            var blockers = await sampler.ConfigureAwait(false);
            if (blockers.Count == 0)
            {
                blockers = await HoldersOfAsync(step.LockTarget, pid, ct).ConfigureAwait(false);
            }

            return new AttemptOutcome(e, blockers, held.Elapsed);
        }
        finally
        {
            await sampling.CancelAsync().ConfigureAwait(false);
            await sampler.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The ledger's part of a transactional step, exempt from the server's statement_timeout (a
    /// role's or database's, meant for the step's statements, which keep it): as the first reads of
    /// a fresh session (pg_locks, pg_stat_activity: cold catalog caches) the phase lock check went
    /// over a role's 40 ms under load. The setting is put back before the lock is asked for.
    /// </summary>
    private static async Task RecordOutsideStatementTimeoutAsync(NpgsqlConnection connection, NpgsqlTransaction tx, Func<NpgsqlConnection, NpgsqlTransaction?, CancellationToken, Task> record, CancellationToken ct)
    {
        string before;
        await using (var lift = new NpgsqlCommand("SELECT current_setting('statement_timeout'); SET LOCAL statement_timeout = 0", connection, tx))
        {
            before = (string)(await lift.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }

        await record(connection, tx, ct).ConfigureAwait(false);
        await using var restore = new NpgsqlCommand("SELECT pg_catalog.set_config('statement_timeout', $1, true)", connection, tx);
        restore.Parameters.Add(new NpgsqlParameter { Value = before });
        await restore.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Takes the step's declared lock on its table before its first statement, so the strongest lock
    /// is asked for once, up front (no upgrade half-way through the transaction, a classic cause of
    /// deadlocks with the application), and so the time it is held is measured from its grant:
    /// <paramref name="held"/> restarts when the first lock is granted, so a wait for a further one
    /// (<see cref="DdlStep.AlsoLocks"/>) counts as held. Only for tables: LOCK TABLE on a view would
    /// lock the view's base tables as well. Which targets are tables is read before the first lock.
    /// </summary>
    private static async Task LockTargetFirstAsync(NpgsqlConnection connection, NpgsqlTransaction tx, DdlStep step, Stopwatch held, CancellationToken ct)
    {
        if (step.Lock < LockLevel.ShareUpdateExclusive)
        {
            held.Restart();
            return;
        }

        var targets = new[] { step.LockTarget }.Concat(step.AlsoLocks).ToArray();
        var tables = new HashSet<string>(StringComparer.Ordinal);
        await using (var kinds = new NpgsqlCommand("SELECT t.name FROM unnest($1::text[]) AS t(name) JOIN pg_class c ON c.oid = to_regclass(t.name) WHERE c.relkind IN ('r', 'p')", connection, tx))
        {
            kinds.Parameters.Add(new NpgsqlParameter { Value = targets, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            await using var reader = await kinds.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                tables.Add(reader.GetString(0));
            }
        }

        var first = true;
        foreach (var target in targets.Where(tables.Contains))
        {
            try
            {
                await ExecuteAsync(connection, tx, $"LOCK TABLE {(step.LocksTargetOnly && target == step.LockTarget ? "ONLY " : "")}{target} IN {step.Lock.ToSqlName()} MODE", ct).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.QueryCanceled && !ct.IsCancellationRequested)
            {
                // A database or role statement_timeout shorter than the lock_timeout ends the lock
                // wait first: nothing ran yet, so it is the same as a lock timeout, and retried.
                throw new PostgresException($"statement_timeout ended the wait for {step.Lock.ToSqlName()} on {target}", "ERROR", "ERROR", LockNotAvailable);
            }

            if (first)
            {
                held.Restart();
                first = false;
            }
        }

        if (first)
        {
            held.Restart();
        }
    }

    /// <summary>
    /// Puts the session back as it started (the timeouts, and what a step SET itself, such as the
    /// vacuum's cost settings). Best effort: a broken connection must not hide the error that broke it.
    /// </summary>
    private static async Task ResetTimeoutsAsync(NpgsqlConnection connection)
    {
        try
        {
            await ExecuteAsync(connection, null, "RESET ALL", CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException)
        {
        }
    }

    private async Task CleanupAsync(NpgsqlConnection connection, DdlStep step, CancellationToken ct)
    {
        foreach (var statement in step.CleanupOnFailure)
        {
            try
            {
                _observer.Verbose($"'{step.Title}' failed; cleaning up: {statement}");
                await ExecuteAsync(connection, null, statement, ct).ConfigureAwait(false);
            }
            catch (PostgresException cleanupError)
            {
                _observer.Warning($"Cleanup after '{step.Title}' failed ({cleanupError.MessageText}); run it by hand: {statement}");
            }
        }
    }

    /// <summary>
    /// While an attempt waits for its lock, asks pg_blocking_pids who it is waiting for. Sampled
    /// half-way through the lock_timeout: after the timeout fires the wait is over and the answer is gone.
    /// An autovacuum worker among them is cancelled when it may be (<see cref="AutovacuumBlockers"/>),
    /// so the attempt still waiting gets its lock.
    /// </summary>
    private async Task<IReadOnlyList<BlockingSession>> SampleBlockersAsync(int pid, DdlStep step, CancellationToken ct)
    {
        try
        {
            var half = TimeSpan.FromMilliseconds(Math.Max(5, _options.LockTimeout.TotalMilliseconds / 2));
            await Task.Delay(half, ct).ConfigureAwait(false);
            await using var monitor = await _target.OpenAsync(ct).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand($"SELECT {BlockingSession.SelectColumns} FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1)) ORDER BY a.xact_start", monitor);
            cmd.Parameters.Add(new NpgsqlParameter { Value = pid });
            var blockers = await ReadSessionsAsync(cmd, ct).ConfigureAwait(false);
            try
            {
                await AutovacuumBlockers.HandleAsync(monitor, blockers, step, step.LockTimeout ?? _options.LockTimeout, _observer, ct).ConfigureAwait(false);
            }
            catch (NpgsqlException)
            {
                // The report of who blocked is worth more than the cancel that failed.
            }

            return blockers;
        }
        catch (OperationCanceledException)
        {
            return Array.Empty<BlockingSession>();
        }
        catch (Exception e) when (e is NpgsqlException or ZdtException)
        {
            return Array.Empty<BlockingSession>();
        }
    }

    /// <summary>The fallback when the sample missed: sessions holding any lock on the step's relation.</summary>
    private async Task<IReadOnlyList<BlockingSession>> HoldersOfAsync(string relation, int ownPid, CancellationToken ct)
    {
        try
        {
            await using var monitor = await _target.OpenAsync(ct).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand(
                $"""
                SELECT DISTINCT ON (a.pid) {BlockingSession.SelectColumns}
                FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.granted AND l.relation = to_regclass($1) AND l.pid <> $2 AND l.pid <> pg_backend_pid()
                """,
                monitor);
            cmd.Parameters.Add(new NpgsqlParameter { Value = relation });
            cmd.Parameters.Add(new NpgsqlParameter { Value = ownPid });
            return await ReadSessionsAsync(cmd, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or ZdtException)
        {
            return Array.Empty<BlockingSession>();
        }
    }

    private static async Task<IReadOnlyList<BlockingSession>> ReadSessionsAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var sessions = new List<BlockingSession>();
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            sessions.Add(BlockingSession.Read(reader));
        }

        return sessions;
    }

    private static string DescribeBlockers(IReadOnlyList<BlockingSession> blockers)
        => blockers.Count == 0
            ? "the blocking session ended before it could be identified"
            : "blocked by " + string.Join("; ", blockers);

    /// <summary>
    /// A step that lifts statement_timeout (CREATE INDEX CONCURRENTLY, VALIDATE, VACUUM) also lifts
    /// the client's command timeout (Npgsql's 30 s default), which would otherwise cancel it on any
    /// table big enough to need more: the same reasoning, on the client's side.
    /// </summary>
    private static bool Unbounded(DdlStep step) => step.LiftsStatementTimeout;

    /// <summary>
    /// A transactional step's statements as one command, which Npgsql sends in one round trip (one
    /// Sync) and the server runs in order, the first error ending it as it would one after another.
    /// Under a lock that stops the application, each round trip is time the lock is held while the
    /// server waits for the client, and on a busy machine each costs milliseconds of scheduling: a
    /// partitioned table's swap has dozens of statements. The separator starts on a new line, so a
    /// statement's trailing -- comment cannot swallow it. (Not for CONCURRENTLY steps: several
    /// statements in one round trip are one implicit transaction.)
    /// </summary>
    private static string InOneRoundTrip(IReadOnlyList<string> statements) => string.Join("\n;\n", statements);

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, string sql, CancellationToken ct, bool unbounded = false)
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        if (unbounded)
        {
            cmd.CommandTimeout = 0;
        }

        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
