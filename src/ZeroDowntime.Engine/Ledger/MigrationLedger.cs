using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Backfill.Control;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Ledger;

/// <summary>
/// The record of every migration, kept in the migrated database itself (schema "zdt" by default)
/// so that a rename spanning days and several deploys can be picked up from any machine.
/// The database enforces one active migration per table (a partial unique index on the table's
/// oid, which survives renames), and a session advisory lock keeps two phases from running at once.
/// </summary>
internal sealed class MigrationLedger
{
    // Namespaces our advisory locks: "ZDT" in the high bytes, the table oid in the low 32 bits.
    private const long AdvisoryLockPrefix = 0x5A44_5400_0000_0000L;

    // With the prefix's high half, in the two-key space of advisory locks (apart from the table locks).
    private const int RegistrationLockKey = 1;

    /// <summary>The spec property (an array of table oids) of a migration that holds other tables besides its own.</summary>
    public const string HeldTablesKey = "HeldTableOids";
    private readonly string _migration;
    private readonly string _event;
    private readonly ConnectionTarget _target;
    private readonly ConcurrentDictionary<long, PhaseLock> _phaseLocks = new();

    // The connections (each open of a pooled connection is a new object) on which the ledger was
    // found trusted; weak, so a closed connection does not linger.
    private readonly ConditionalWeakTable<NpgsqlConnection, object> _verifiedOn = new();
    private static readonly object Verified = new();

    public MigrationLedger(string schema, ConnectionTarget target)
    {
        Ident.Validate(schema, "ledger schema name");
        _migration = Ident.Qualify(schema, "migration");
        _event = Ident.Qualify(schema, "migration_event");
        _target = target;
        SchemaName = schema;
    }

    public string SchemaName { get; }

    /// <summary>
    /// Whether the ledger exists; when it does, it is first checked to be trusted
    /// (<see cref="LedgerTrust"/>), so no caller reads or writes a ledger someone else could have
    /// booby-trapped. Every use of the ledger starts here or in <see cref="EnsureCreatedAsync"/>.
    /// </summary>
    public async Task<bool> ExistsAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using (var cmd = new NpgsqlCommand("SELECT pg_catalog.to_regclass($1) IS NOT NULL", connection))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = _event });
            if (!(bool)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!)
            {
                return false;
            }
        }

        // Once per opened connection (a command's coordinator, a backfill's batch connection): the
        // check costs tens of milliseconds, mostly planning, and a command reads the ledger several times.
        if (!_verifiedOn.TryGetValue(connection, out _))
        {
            await LedgerTrust.RequireTrustedLedgerAsync(connection, null, SchemaName, ct).ConfigureAwait(false);
            await UpgradeIfOlderAsync(connection, ct).ConfigureAwait(false);
            _verifiedOn.AddOrUpdate(connection, Verified);
        }

        return true;
    }

    /// <summary>
    /// Brings a ledger made by an older version of the module up to this one's shape, once, as its
    /// owner (or a member of it, or a superuser); anyone else gets <see cref="ErrorIds.LedgerOutdated"/>.
    /// Concurrent callers serialize on the ledger's advisory lock and the second finds it done.
    /// </summary>
    private async Task UpgradeIfOlderAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        if (await LedgerSchema.ReadVersionAsync(connection, null, SchemaName, ct).ConfigureAwait(false) >= LedgerSchema.CurrentVersion)
        {
            return;
        }

        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var prepare = new NpgsqlCommand(
            $"SELECT pg_advisory_xact_lock({AdvisoryLockPrefix}); SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '10s'", connection, tx))
        {
            await prepare.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        var version = await LedgerSchema.ReadVersionAsync(connection, tx, SchemaName, ct).ConfigureAwait(false);
        if (version >= LedgerSchema.CurrentVersion)
        {
            return;
        }

        // Adding columns and commenting on the schema needs the rights of the owner of both.
        await using (var owner = new NpgsqlCommand(
            """
            SELECT c.relowner::pg_catalog.regrole::text,
                   pg_catalog.pg_has_role(c.relowner, 'USAGE') AND pg_catalog.pg_has_role(n.nspowner, 'USAGE')
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = 'migration'
            """, connection, tx))
        {
            owner.Parameters.Add(new NpgsqlParameter { Value = SchemaName });
            await using var reader = await owner.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            if (!reader.GetBoolean(1))
            {
                throw LedgerSchema.OutdatedError(SchemaName, connection.Database, version, reader.GetString(0));
            }
        }

        await using (var upgrade = new NpgsqlCommand(LedgerSchema.UpgradeSql(LedgerSchema.For(SchemaName), version), connection, tx))
        {
            await upgrade.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await LedgerTrust.RequireTrustedLedgerAsync(connection, tx, SchemaName, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates the ledger on first use, only as a role whose objects every later user trusts (a
    /// superuser or the database owner), and checks it before use. Idempotent and safe when two
    /// sessions race. Only commands that are about to change something call this; reading
    /// commands find no ledger and report no migrations.
    /// </summary>
    public async Task EnsureCreatedAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        if (await ExistsAsync(connection, ct).ConfigureAwait(false))
        {
            return;
        }

        var names = LedgerSchema.For(SchemaName);
        var ddl = $"SELECT pg_advisory_xact_lock({AdvisoryLockPrefix});\n"
                  + LedgerSchema.Version1Sql(names) + "\n"
                  + LedgerSchema.UpgradeSql(names, fromVersion: 1);
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        if (await LedgerTrust.PrepareCreatorAsync(connection, tx, SchemaName, ct).ConfigureAwait(false) is { } actAsOwner)
        {
            await using var setRole = new NpgsqlCommand(actAsOwner, connection, tx);
            await setRole.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        // A part made earlier by someone else (say, an empty schema of that name) is refused
        // before our DDL would fail on it with a bare "must be owner".
        await LedgerTrust.RequireTrustedLedgerAsync(connection, tx, SchemaName, ct).ConfigureAwait(false);
        await using (var cmd = new NpgsqlCommand(ddl, connection, tx))
        {
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        // IF NOT EXISTS keeps whatever was there already (a schema, or a table, someone else
        // made under our names): check the result before it is committed and used.
        await LedgerTrust.RequireTrustedLedgerAsync(connection, tx, SchemaName, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Records a new migration in phase Expanding before any DDL runs, so the unique index refuses a
    /// second migration on the same table before anything changes.
    /// </summary>
    public async Task<long> RegisterAsync(NpgsqlConnection connection, MigrationRegistration registration, CancellationToken ct)
    {
        // Registrations are serialized, so that a migration that also holds other tables (a type
        // change with -Cascade) and one on such a table cannot both pass the check below; the
        // unique index alone only sees the row's own table.
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var serialize = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({AdvisoryLockPrefix >> 32}::int, {RegistrationLockKey})", connection, tx))
        {
            await serialize.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        foreach (var oid in registration.HeldTableOids.Prepend(registration.TableOid))
        {
            if (await FindActiveAsync(connection, oid, ct).ConfigureAwait(false) is { } holder)
            {
                throw ActiveMigrationError(holder.Schema, holder.Table, holder);
            }
        }

        const string columns = "(operation, schema_name, table_name, table_oid, column_name, new_name, strategy, phase, spec, rows_estimated, tag)";
        var sql = $"INSERT INTO {_migration} {columns} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = registration.Operation });
        cmd.Parameters.Add(new NpgsqlParameter { Value = registration.Schema });
        cmd.Parameters.Add(new NpgsqlParameter { Value = registration.Table });
        cmd.Parameters.Add(new NpgsqlParameter { Value = registration.TableOid, NpgsqlDbType = NpgsqlDbType.Oid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)registration.Column ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)registration.NewName ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = registration.Strategy });
        cmd.Parameters.Add(new NpgsqlParameter { Value = MigrationPhase.Expanding.ToLedgerName() });
        cmd.Parameters.Add(new NpgsqlParameter { Value = registration.SpecJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)registration.RowsEstimated ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        cmd.Parameters.Add(TagParameter(registration.Tag));
        try
        {
            var id = (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            await AddEventAsync(connection, tx, id, "register", null, MigrationPhase.Expanding, null, registration.Summary, ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return id;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            await tx.RollbackAsync(ct).ConfigureAwait(false);
            var active = await FindActiveAsync(connection, registration.TableOid, ct).ConfigureAwait(false);
            throw ActiveMigrationError(registration.Schema, registration.Table, active);
        }
    }

    /// <summary>
    /// Records an operation that ran to its end in one call (an index, a constraint, raw DDL) as
    /// Completed or Failed, after its DDL ran. It is never written in an active phase, so it does
    /// not take its table's one active-migration slot.
    /// </summary>
    public async Task<long> RecordOneShotAsync(NpgsqlConnection connection, MigrationRegistration registration, MigrationPhase outcome, string sql, string? error, CancellationToken ct)
    {
        const string columns = "(operation, schema_name, table_name, table_oid, column_name, new_name, strategy, phase, spec, last_error, completed_at, tag)";
        var insert = $"INSERT INTO {_migration} {columns} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11 THEN clock_timestamp() END, $12) RETURNING id";
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        long id;
        await using (var cmd = new NpgsqlCommand(insert, connection, tx))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = registration.Operation });
            cmd.Parameters.Add(new NpgsqlParameter { Value = registration.Schema });
            cmd.Parameters.Add(new NpgsqlParameter { Value = registration.Table });
            cmd.Parameters.Add(new NpgsqlParameter { Value = registration.TableOid, NpgsqlDbType = NpgsqlDbType.Oid });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)registration.Column ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)registration.NewName ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = registration.Strategy });
            cmd.Parameters.Add(new NpgsqlParameter { Value = outcome.ToLedgerName() });
            cmd.Parameters.Add(new NpgsqlParameter { Value = registration.SpecJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)(error is null ? null : _target.Scrub(error)) ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = outcome == MigrationPhase.Completed });
            cmd.Parameters.Add(TagParameter(registration.Tag));
            id = (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }

        await AddEventAsync(connection, tx, id, "apply", null, outcome, sql, error ?? registration.Summary, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return id;
    }

    private static NpgsqlParameter TagParameter(string? tag)
        => new() { Value = (object?)tag ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    public static ZdtException ActiveMigrationError(string schema, string table, LedgerRow? active)
    {
        var which = active is null
            ? "another migration"
            : $"migration {active.Id} ({active.Operation} {Ident.Qualify(active.Schema, active.Table)}, phase {active.Phase}, started {active.CreatedAt:u} by {active.CreatedBy})";
        return new ZdtException(
            ErrorIds.MigrationAlreadyActive,
            ErrorKind.ResourceExists,
            $"Table {Ident.Qualify(schema, table)} already has an active migration: {which}. {NextStep(active)} Nothing was changed.")
        { TargetObject = active?.Id };
    }

    /// <summary>What can be run next on an active migration, by its phase: advice that is always runnable from there.</summary>
    public static string NextStep(LedgerRow? active)
    {
        if (active is null)
        {
            return "Complete it (Complete-Contract) or undo it (Undo-Migration) first.";
        }

        var id = active.Id;
        return active.Phase switch
        {
            MigrationPhase.Expanding => $"Its expand did not finish: it is still running in another session, or it was stopped (the process killed or disconnected; Get-Migration -Id {id} shows its last step and error). If no session runs it, Undo-Migration -Id {id} removes what it did; then run this command again.",
            MigrationPhase.Contracting => $"Its contract did not finish (Get-Migration -Id {id} shows why): run Complete-Contract -Id {id} to finish it, or Undo-Migration -Id {id}.",
            MigrationPhase.Undoing => $"Its undo did not finish (Get-Migration -Id {id} shows why): run Undo-Migration -Id {id} again to finish it.",
            MigrationPhase.Expanded or MigrationPhase.Backfilling or MigrationPhase.Backfilled or MigrationPhase.Verified =>
                $"Carry it on (Invoke-Backfill -Id {id}, Test-ColumnParity -Id {id} and Complete-Contract -Id {id}, as far as its operation has those phases) or undo it (Undo-Migration -Id {id}) first.",
            _ => "Complete it (Complete-Contract) or undo it (Undo-Migration) first.",
        };
    }

    /// <summary>
    /// The active migration of the table: the one on it, or one that holds it besides its own table
    /// (its spec's <see cref="HeldTablesKey"/>, a type change with -Cascade on the referencing tables).
    /// </summary>
    public async Task<LedgerRow?> FindActiveAsync(NpgsqlConnection connection, uint tableOid, CancellationToken ct)
    {
        if (!await ExistsAsync(connection, ct).ConfigureAwait(false))
        {
            return null;
        }

        var rows = await QueryAsync(
            connection,
            $"(table_oid = $1 OR spec->'{HeldTablesKey}' @> to_jsonb($1::bigint)) AND phase NOT IN ('completed', 'undone', 'failed')",
            ct,
            new NpgsqlParameter { Value = tableOid, NpgsqlDbType = NpgsqlDbType.Oid }).ConfigureAwait(false);
        return rows.FirstOrDefault(r => r.TableOid == tableOid) ?? rows.FirstOrDefault();
    }

    public async Task<LedgerRow> GetAsync(NpgsqlConnection connection, long id, CancellationToken ct)
    {
        var rows = await ExistsAsync(connection, ct).ConfigureAwait(false)
            ? await QueryAsync(connection, "id = $1", ct, new NpgsqlParameter { Value = id }).ConfigureAwait(false)
            : Array.Empty<LedgerRow>();
        return rows.FirstOrDefault() ?? throw new ZdtException(
            ErrorIds.MigrationNotFound,
            ErrorKind.ObjectNotFound,
            $"There is no migration with id {id} in the ledger {Ident.Quote(SchemaName)} of database {_target.Database}.")
        { TargetObject = id };
    }

    public async Task<IReadOnlyList<LedgerRow>> QueryAsync(NpgsqlConnection connection, MigrationQuery query, CancellationToken ct)
    {
        if (!await ExistsAsync(connection, ct).ConfigureAwait(false))
        {
            return Array.Empty<LedgerRow>();
        }

        var where = new List<string> { "true" };
        var parameters = new List<NpgsqlParameter>();
        if (query.Id is { } id)
        {
            parameters.Add(new NpgsqlParameter { Value = id });
            where.Add($"id = ${parameters.Count}");
        }

        if (query.Schema is { } schema)
        {
            parameters.Add(new NpgsqlParameter { Value = schema });
            where.Add($"schema_name = ${parameters.Count}");
        }

        if (query.Table is { } table)
        {
            parameters.Add(new NpgsqlParameter { Value = table });
            where.Add($"(table_name = ${parameters.Count} OR new_name = ${parameters.Count})");
        }

        if (query.Tag is { } tag)
        {
            parameters.Add(new NpgsqlParameter { Value = tag });
            where.Add($"tag = ${parameters.Count}");
        }

        if (query.Column is { } column)
        {
            parameters.Add(new NpgsqlParameter { Value = column });
            where.Add($"(column_name = ${parameters.Count} OR new_name = ${parameters.Count})");
        }

        if (query.Operations.Count > 0)
        {
            parameters.Add(new NpgsqlParameter { Value = query.Operations.Select(o => o.ToLowerInvariant()).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            where.Add($"lower(operation) = ANY(${parameters.Count})");
        }

        if (query.Phases.Count > 0)
        {
            parameters.Add(new NpgsqlParameter { Value = query.Phases.Select(p => p.ToLedgerName()).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            where.Add($"phase = ANY(${parameters.Count})");
        }

        if (query.ActiveOnly)
        {
            where.Add("phase NOT IN ('completed', 'undone', 'failed')");
        }

        return await QueryAsync(connection, string.Join(" AND ", where), ct, parameters.ToArray()).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<LedgerRow>> QueryAsync(NpgsqlConnection connection, string where, CancellationToken ct, params NpgsqlParameter[] parameters)
    {
        var sql = $"""
            SELECT id, operation, schema_name, table_name, table_oid, column_name, new_name, strategy, phase, spec::text,
                   created_at, created_by || COALESCE(' (' || NULLIF(created_app, '') || COALESCE(', ' || host(created_client), '') || ')', ''),
                   updated_at, updated_by, rows_estimated, rows_backfilled, backfill_checkpoint::text, backfill_seconds,
                   parity_checked_at, parity_rows_checked, parity_mismatches, last_error,
                   backfill_control::text, backfill_status::text, tag
            FROM {_migration} WHERE {where} ORDER BY id
            """;
        var rows = new List<LedgerRow>();
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.AddRange(parameters);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            rows.Add(new LedgerRow
            {
                Id = reader.GetInt64(0),
                Operation = reader.GetString(1),
                Schema = reader.GetString(2),
                Table = reader.GetString(3),
                TableOid = reader.GetFieldValue<uint>(4),
                Column = reader.IsDBNull(5) ? null : reader.GetString(5),
                NewName = reader.IsDBNull(6) ? null : reader.GetString(6),
                Strategy = reader.GetString(7),
                Phase = MigrationPhases.FromLedgerName(reader.GetString(8)),
                SpecJson = reader.GetString(9),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(10),
                CreatedBy = reader.GetString(11),
                UpdatedAt = reader.GetFieldValue<DateTimeOffset>(12),
                UpdatedBy = reader.GetString(13),
                RowsEstimated = reader.IsDBNull(14) ? null : reader.GetInt64(14),
                RowsBackfilled = reader.GetInt64(15),
                BackfillCheckpointJson = reader.IsDBNull(16) ? null : reader.GetString(16),
                BackfillSeconds = reader.GetDouble(17),
                ParityCheckedAt = reader.IsDBNull(18) ? null : reader.GetFieldValue<DateTimeOffset>(18),
                ParityRowsChecked = reader.IsDBNull(19) ? null : reader.GetInt64(19),
                ParityMismatches = reader.IsDBNull(20) ? null : reader.GetInt64(20),
                LastError = reader.IsDBNull(21) ? null : reader.GetString(21),
                BackfillControlJson = reader.IsDBNull(22) ? null : reader.GetString(22),
                BackfillStatusJson = reader.IsDBNull(23) ? null : reader.GetString(23),
                Tag = reader.IsDBNull(24) ? null : reader.GetString(24),
            });
        }

        return rows;
    }

    public async Task<IReadOnlyList<MigrationEvent>> EventsAsync(NpgsqlConnection connection, long migrationId, CancellationToken ct)
    {
        var sql = $"""
            SELECT id, migration_id, at, action, from_phase, to_phase,
                   by_user || COALESCE(' (' || NULLIF(by_app, '') || COALESCE(', ' || host(by_client), '') || ')', ''), sql, message
            FROM {_event} WHERE migration_id = $1 ORDER BY id
            """;
        var events = new List<MigrationEvent>();
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = migrationId });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            events.Add(new MigrationEvent(
                reader.GetInt64(0),
                reader.GetInt64(1),
                reader.GetFieldValue<DateTimeOffset>(2),
                reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.GetString(5),
                reader.GetString(6),
                reader.IsDBNull(7) ? null : reader.GetString(7),
                reader.IsDBNull(8) ? null : reader.GetString(8)));
        }

        return events;
    }

    /// <summary>
    /// Moves a migration to a new phase and records the event with the SQL that ran. Called inside
    /// the DDL's own transaction where there is one, so the schema and the ledger never disagree.
    /// </summary>
    public async Task SetPhaseAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, long id, MigrationPhase from, MigrationPhase to, string action, string? sql, string? message, CancellationToken ct)
    {
        var update = $"""
            UPDATE {_migration} SET phase = $2, updated_at = clock_timestamp(), updated_by = current_user,
                   last_error = CASE WHEN $2 IN ('failed') THEN last_error ELSE NULL END,
                   completed_at = CASE WHEN $2 IN ('completed', 'undone') THEN clock_timestamp() ELSE completed_at END
            WHERE id = $1 AND phase = $3
            """;
        await using (var cmd = new NpgsqlCommand(update, connection, tx))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = id });
            cmd.Parameters.Add(new NpgsqlParameter { Value = to.ToLedgerName() });
            cmd.Parameters.Add(new NpgsqlParameter { Value = from.ToLedgerName() });
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) != 1)
            {
                throw new ZdtException(
                    ErrorIds.PhaseChangedConcurrently,
                    ErrorKind.InvalidOperation,
                    $"Migration {id} is no longer in phase {from}; another session changed it. Nothing was changed by this one.")
                { TargetObject = id };
            }
        }

        await AddEventAsync(connection, tx, id, action, from, to, sql, message, ct).ConfigureAwait(false);
    }

    /// <summary>Records a failure without changing the phase (or marking it Failed when nothing is left behind).</summary>
    public async Task RecordErrorAsync(NpgsqlConnection connection, long id, MigrationPhase phase, MigrationPhase? newPhase, string action, string error, CancellationToken ct)
    {
        var safe = _target.Scrub(error);
        var sql = $"UPDATE {_migration} SET last_error = $2, phase = $3, updated_at = clock_timestamp(), updated_by = current_user WHERE id = $1";
        await using (var cmd = new NpgsqlCommand(sql, connection))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = id });
            cmd.Parameters.Add(new NpgsqlParameter { Value = safe });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (newPhase ?? phase).ToLedgerName() });
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await AddEventAsync(connection, null, id, action + " failed", phase, newPhase ?? phase, null, safe, ct).ConfigureAwait(false);
    }

    /// <summary>Starts a new backfill walk: no checkpoint, the table's current size as the estimate. Row and time counters keep adding up over all runs.</summary>
    public Task RestartBackfillAsync(NpgsqlConnection connection, long id, long rowsEstimated, CancellationToken ct)
        => SetAsync(connection, null, id, "backfill_checkpoint = NULL, rows_estimated = $2", ct, new NpgsqlParameter { Value = rowsEstimated });

    /// <summary>Records where the backfill's walk stands, outside a batch (its start, a new pass).</summary>
    public Task SaveCheckpointAsync(NpgsqlConnection connection, long id, BackfillCheckpoint checkpoint, CancellationToken ct)
        => SetAsync(connection, null, id, "backfill_checkpoint = $2", ct, Jsonb(checkpoint));

    /// <summary>Records one batch inside its own transaction, so a batch is never done without being recorded, nor recorded without being done.</summary>
    public Task RecordBatchAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long id, long rowsUpdated, BackfillCheckpoint checkpoint, TimeSpan elapsed, CancellationToken ct)
        => SetAsync(
            connection,
            tx,
            id,
            "rows_backfilled = rows_backfilled + $2, backfill_checkpoint = $3, backfill_seconds = backfill_seconds + $4",
            ct,
            new NpgsqlParameter { Value = rowsUpdated },
            Jsonb(checkpoint),
            new NpgsqlParameter { Value = elapsed.TotalSeconds });

    /// <summary>Records a parity check's result on the migration.</summary>
    public Task RecordParityAsync(NpgsqlConnection connection, long id, long rowsChecked, long mismatches, CancellationToken ct)
        => SetAsync(
            connection,
            null,
            id,
            "parity_checked_at = clock_timestamp(), parity_rows_checked = $2, parity_mismatches = $3",
            ct,
            new NpgsqlParameter { Value = rowsChecked },
            new NpgsqlParameter { Value = mismatches });

    /// <summary>Replaces a migration's spec and the columns it names (a version schema gaining renames), inside the caller's transaction.</summary>
    public Task ReplaceSpecAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long id, string specJson, string columns, string newNames, CancellationToken ct)
        => SetAsync(
            connection,
            tx,
            id,
            "spec = $2, column_name = $3, new_name = $4, last_error = NULL",
            ct,
            new NpgsqlParameter { Value = specJson, NpgsqlDbType = NpgsqlDbType.Jsonb },
            new NpgsqlParameter { Value = columns },
            new NpgsqlParameter { Value = newNames });

    private static NpgsqlParameter Jsonb(BackfillCheckpoint checkpoint)
        => new() { Value = JsonSerializer.Serialize(checkpoint), NpgsqlDbType = NpgsqlDbType.Jsonb };

    private async Task SetAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, long id, string setClause, CancellationToken ct, params NpgsqlParameter[] parameters)
    {
        var sql = $"UPDATE {_migration} SET {setClause}, updated_at = clock_timestamp(), updated_by = current_user WHERE id = $1";
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
        cmd.Parameters.AddRange(parameters);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>What operators asked of the migration's backfill (pause, retuning); none yet: the defaults.</summary>
    public async Task<BackfillControl> ReadBackfillControlAsync(NpgsqlConnection connection, long id, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"SELECT backfill_control::text FROM {_migration} WHERE id = $1", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is string json ? FromJson<BackfillControl>(json) : new BackfillControl();
    }

    /// <summary>
    /// Changes the backfill's control as an operator asked (Suspend-Backfill, Resume-Backfill,
    /// Set-BackfillThrottle), under the row's lock so two operators do not lose each other's change,
    /// and records it as an event (who, what) in the same transaction.
    /// </summary>
    public async Task<BackfillControl> ChangeBackfillControlAsync(NpgsqlConnection connection, long id, string action, Func<BackfillControl, string, BackfillControl> change, CancellationToken ct)
    {
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        BackfillControl current;
        string user;
        MigrationPhase phase;
        await using (var read = new NpgsqlCommand($"SELECT backfill_control::text, current_user::text, phase FROM {_migration} WHERE id = $1 FOR UPDATE", connection, tx))
        {
            read.Parameters.Add(new NpgsqlParameter { Value = id });
            await using var reader = await read.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            current = reader.IsDBNull(0) ? new BackfillControl() : FromJson<BackfillControl>(reader.GetString(0));
            user = reader.GetString(1);
            phase = MigrationPhases.FromLedgerName(reader.GetString(2));
        }

        var next = change(current, user);
        await using (var write = new NpgsqlCommand($"UPDATE {_migration} SET backfill_control = $2 WHERE id = $1", connection, tx))
        {
            write.Parameters.Add(new NpgsqlParameter { Value = id });
            write.Parameters.Add(new NpgsqlParameter { Value = ToJson(next), NpgsqlDbType = NpgsqlDbType.Jsonb });
            await write.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await AddEventAsync(connection, tx, id, action, phase, phase, null, ToJson(next), ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return next;
    }

    /// <summary>
    /// Sets the backfill's control. Deliberately leaves updated_at/updated_by alone: the row's
    /// phase work is not touched, and an operator's pause must not read as the migration's last change.
    /// </summary>
    public async Task SetBackfillControlAsync(NpgsqlConnection connection, long id, BackfillControl control, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"UPDATE {_migration} SET backfill_control = $2 WHERE id = $1", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
        cmd.Parameters.Add(new NpgsqlParameter { Value = ToJson(control), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Jsonb });
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Writes the running backfill's heartbeat and reads, in the same statement, what operators asked of it.</summary>
    public async Task<BackfillControl> ExchangeBackfillHeartbeatAsync(NpgsqlConnection connection, long id, BackfillStatus status, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"UPDATE {_migration} SET backfill_status = $2 WHERE id = $1 RETURNING backfill_control::text", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
        cmd.Parameters.Add(new NpgsqlParameter { Value = ToJson(status), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Jsonb });
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is string json ? FromJson<BackfillControl>(json) : new BackfillControl();
    }

    /// <summary>The ledger's spelling of the phases a migration ends in (<see cref="MigrationPhases.IsFinal"/>).</summary>
    private static NpgsqlParameter FinalPhasesParameter()
        => new()
        {
            Value = Enum.GetValues<MigrationPhase>().Where(p => p.IsFinal()).Select(p => p.ToLedgerName()).ToArray(),
            NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text,
        };

    /// <summary>
    /// The finished migrations (completed, undone or failed) whose last change is more than
    /// <paramref name="olderThan"/> ago by the server's clock, optionally only one id or one tag:
    /// what <see cref="DeleteFinishedAsync"/> would remove. Active migrations are never among them.
    /// </summary>
    public async Task<IReadOnlyList<LedgerRow>> FindFinishedOlderThanAsync(NpgsqlConnection connection, TimeSpan olderThan, long? id, string? tag, CancellationToken ct)
    {
        if (!await ExistsAsync(connection, ct).ConfigureAwait(false))
        {
            return Array.Empty<LedgerRow>();
        }

        return await QueryAsync(
            connection,
            "phase = ANY($1) AND updated_at < clock_timestamp() - $2 AND ($3::bigint IS NULL OR id = $3) AND ($4::text IS NULL OR tag = $4)",
            ct,
            FinalPhasesParameter(),
            new NpgsqlParameter { Value = olderThan, NpgsqlDbType = NpgsqlDbType.Interval },
            new NpgsqlParameter { Value = (object?)id ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint },
            TagParameter(tag)).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes the migrations of <paramref name="ids"/> that are still finished and older than
    /// <paramref name="olderThan"/> (checked again here, under the rows' locks), with their events,
    /// in one transaction; a backfill's control and heartbeat are columns of the row and go with it.
    /// Returns the ids deleted. An active migration is never deleted, whatever the ids say.
    /// </summary>
    public async Task<IReadOnlyList<long>> DeleteFinishedAsync(NpgsqlConnection connection, IReadOnlyCollection<long> ids, TimeSpan olderThan, CancellationToken ct)
    {
        if (ids.Count == 0 || !await ExistsAsync(connection, ct).ConfigureAwait(false))
        {
            return Array.Empty<long>();
        }

        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        var gone = new List<long>();
        await using (var select = new NpgsqlCommand(
            $"SELECT id FROM {_migration} WHERE id = ANY($1) AND phase = ANY($2) AND updated_at < clock_timestamp() - $3 ORDER BY id FOR UPDATE",
            connection,
            tx))
        {
            select.Parameters.Add(new NpgsqlParameter { Value = ids.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            select.Parameters.Add(FinalPhasesParameter());
            select.Parameters.Add(new NpgsqlParameter { Value = olderThan, NpgsqlDbType = NpgsqlDbType.Interval });
            await using var reader = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                gone.Add(reader.GetInt64(0));
            }
        }

        // The events first: they reference the migration row.
        await DeleteWhereAsync(connection, tx, $"DELETE FROM {_event} WHERE migration_id = ANY($1)", gone, ct).ConfigureAwait(false);
        await DeleteWhereAsync(connection, tx, $"DELETE FROM {_migration} WHERE id = ANY($1)", gone, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return gone;
    }

    private static async Task DeleteWhereAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        await using var delete = new NpgsqlCommand(sql, connection, tx);
        delete.Parameters.Add(new NpgsqlParameter { Value = ids.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        await delete.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public async Task AddEventAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, long id, string action, MigrationPhase? from, MigrationPhase to, string? sql, string? message, CancellationToken ct)
    {
        var insert = $"INSERT INTO {_event} (migration_id, action, from_phase, to_phase, sql, message) VALUES ($1, $2, $3, $4, $5, $6)";
        await using var cmd = new NpgsqlCommand(insert, connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
        cmd.Parameters.Add(new NpgsqlParameter { Value = action });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)from?.ToLedgerName() ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = to.ToLedgerName() });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)sql ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)(message is null ? null : _target.Scrub(message)) ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Takes the per-table session advisory lock that keeps two phases (say, two Invoke-Backfill
    /// runs, or an undo racing a contract) from working on one table at once, on the phase's
    /// coordinator connection. Never waits for it: a second runner gets a clear error naming the
    /// holder. The lock lives as long as the coordinator's session, which the phase does not use
    /// while it works, so the session is kept from being cut for idleness (idle_session_timeout)
    /// and every commit of the phase checks that the lock is still held (<see cref="PhaseLock"/>).
    /// </summary>
    public async Task<PhaseLock> AcquirePhaseLockAsync(NpgsqlConnection coordinator, uint tableOid, string tableName, CancellationToken ct)
    {
        var key = AdvisoryLockPrefix | tableOid;
        await using (var keepAlive = new NpgsqlCommand("SELECT set_config('idle_session_timeout', '0', false) WHERE current_setting('idle_session_timeout', true) IS NOT NULL", coordinator))
        {
            await keepAlive.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        int pid;
        DateTime backendStart;
        await using (var cmd = new NpgsqlCommand("SELECT pg_try_advisory_lock($1), pg_backend_pid(), (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())", coordinator))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = key });
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            if (!reader.GetBoolean(0))
            {
                await reader.DisposeAsync().ConfigureAwait(false);
                throw await PhaseRunningErrorAsync(coordinator, key, tableName, ct).ConfigureAwait(false);
            }

            pid = reader.GetInt32(1);
            backendStart = reader.GetDateTime(2);
        }

        var phaseLock = new PhaseLock(this, coordinator, key, pid, backendStart, tableName);
        try
        {
            await WaitForLastHolderAsync(coordinator, tableOid, ct).ConfigureAwait(false);
        }
        catch
        {
            await phaseLock.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return phaseLock;
    }

    /// <summary>
    /// A previous holder whose session died may have a transaction that checked the lock a moment
    /// before and has not committed yet (it holds the migration row, see
    /// <see cref="PhaseLock.RequireHeldAsync"/>). Waiting for the row makes its commit visible before
    /// this phase reads the migration; any later transaction of the old holder fails its check.
    /// </summary>
    private async Task WaitForLastHolderAsync(NpgsqlConnection coordinator, uint tableOid, CancellationToken ct)
    {
        if (!await ExistsAsync(coordinator, ct).ConfigureAwait(false))
        {
            return;
        }

        await using var tx = await coordinator.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = new NpgsqlCommand($"SELECT id FROM {_migration} WHERE table_oid = $1 AND phase NOT IN ('completed', 'undone', 'failed') FOR UPDATE", coordinator, tx))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = tableOid, NpgsqlDbType = NpgsqlDbType.Oid });
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    private static async Task<ZdtException> PhaseRunningErrorAsync(NpgsqlConnection connection, long key, string tableName, CancellationToken ct)
    {
        const string holderSql = """
            SELECT a.pid, COALESCE(a.application_name, ''), COALESCE(a.usename::text, ''), COALESCE(a.query, '')
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = $1
            LIMIT 1
            """;
        var holder = "another session";
        await using (var cmd = new NpgsqlCommand(holderSql, connection))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = key });
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                holder = $"pid {reader.GetInt32(0)} (user {reader.GetString(2)}, application '{reader.GetString(1)}')";
            }
        }

        return new ZdtException(
            ErrorIds.MigrationPhaseRunning,
            ErrorKind.ResourceBusy,
            $"Another ZeroDowntime phase is already running on {tableName}: {holder}. Wait for it to finish; nothing was changed.")
        { TargetObject = tableName };
    }

    /// <summary>Locks the migration row in the caller's transaction (see <see cref="PhaseLock.RequireHeldAsync"/>).</summary>
    internal async Task LockRowAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long id, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"SELECT id FROM {_migration} WHERE id = $1 FOR UPDATE", connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Fails (in the caller's transaction, before it commits) when the phase lock of the migration is
    /// no longer held: for work that commits on connections of its own (backfill batches).
    /// </summary>
    public Task RequirePhaseLockAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long migrationId, CancellationToken ct)
        => _phaseLocks.TryGetValue(migrationId, out var phaseLock)
            ? phaseLock.RequireHeldAsync(connection, tx, migrationId, ct)
            : throw new InvalidOperationException($"Migration {migrationId} is worked on without its phase lock.");

    internal void Bind(long migrationId, PhaseLock phaseLock) => _phaseLocks[migrationId] = phaseLock;

    internal void Unbind(PhaseLock phaseLock)
    {
        foreach (var bound in _phaseLocks.Where(p => ReferenceEquals(p.Value, phaseLock)).ToList())
        {
            _phaseLocks.TryRemove(bound);
        }
    }

    public static string ToJson<T>(T spec) => JsonSerializer.Serialize(spec);

    public static T FromJson<T>(string json) => JsonSerializer.Deserialize<T>(json) ?? throw new InvalidDataException("Empty migration spec in the ledger.");
}

/// <summary>
/// The per-table session advisory lock held while a phase runs, on the phase's coordinator
/// connection; disposing releases it. The release is explicit because pooled connections are reset
/// lazily (on their next use), so the lock would otherwise outlive the phase. Best effort: a broken
/// connection has released it already.
/// The phase does its work on other connections, so the lock can be lost while it runs (the
/// coordinator's session is terminated or cut). Every transaction of the phase that commits work
/// therefore first locks the migration row and checks that this very session (pid and start time,
/// so a reused pid does not pass) still holds the lock (<see cref="RequireHeldAsync"/>); when it does
/// not, the transaction fails with PhaseLockLost and commits nothing. A new holder waits for the
/// migration row before it starts, so once it runs, no transaction of the old holder commits.
/// </summary>
internal sealed class PhaseLock : IAsyncDisposable
{
    private readonly MigrationLedger _ledger;
    private readonly NpgsqlConnection _connection;
    private readonly long _key;
    private readonly int _pid;
    private readonly DateTime _backendStart;
    private readonly string _tableName;

    internal PhaseLock(MigrationLedger ledger, NpgsqlConnection connection, long key, int pid, DateTime backendStart, string tableName)
    {
        _ledger = ledger;
        _connection = connection;
        _key = key;
        _pid = pid;
        _backendStart = backendStart;
        _tableName = tableName;
    }

    /// <summary>The server process of the coordinator session that holds the lock.</summary>
    public int Pid => _pid;

    /// <summary>Makes <see cref="MigrationLedger.RequirePhaseLockAsync"/> check this lock for the migration until disposed.</summary>
    public PhaseLock Guarding(long migrationId)
    {
        _ledger.Bind(migrationId, this);
        return this;
    }

    /// <summary>
    /// Inside the caller's transaction, right before it commits: locks the migration row (a new
    /// holder waits for it), then checks that the coordinator session still holds the lock.
    /// </summary>
    public async Task RequireHeldAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long migrationId, CancellationToken ct)
    {
        await _ledger.LockRowAsync(connection, tx, migrationId, ct).ConfigureAwait(false);
        const string held = """
            SELECT EXISTS (
                SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.pid = $2 AND a.backend_start = $3
                  AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 AND l.objsubid = 1)
            """;
        await using var cmd = new NpgsqlCommand(held, connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = _key });
        cmd.Parameters.Add(new NpgsqlParameter { Value = _pid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = _backendStart, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        if (!(bool)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!)
        {
            throw new ZdtException(
                ErrorIds.PhaseLockLost,
                ErrorKind.OperationStopped,
                $"Migration {migrationId} stopped: its phase lock on {_tableName} was lost (the session that held it, pid {_pid}, ended: terminated, cut by the network, or timed out), so another phase could start on the table. This transaction was rolled back; what committed before it is kept. Check Get-Migration -Id {migrationId}, then run the same command again to continue.")
            { TargetObject = migrationId };
        }
    }

    public async ValueTask DisposeAsync()
    {
        _ledger.Unbind(this);
        try
        {
            await using var cmd = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", _connection);
            cmd.Parameters.Add(new NpgsqlParameter { Value = _key });
            await cmd.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
        }
    }
}

/// <summary>What a new migration is registered with.</summary>
internal sealed record MigrationRegistration(
    string Operation,
    string Schema,
    string Table,
    uint TableOid,
    string? Column,
    string? NewName,
    string Strategy,
    string SpecJson,
    long? RowsEstimated,
    string Summary)
{
    /// <summary>Other tables the migration holds until it ends (no other migration may start on them); also in its spec.</summary>
    public IReadOnlyList<uint> HeldTableOids { get; init; } = Array.Empty<uint>();

    /// <summary>The caller's label (-Tag), or null.</summary>
    public string? Tag { get; init; }
}

/// <summary>A migration row as stored.</summary>
internal sealed record LedgerRow
{
    public required long Id { get; init; }
    public required string Operation { get; init; }
    public required string Schema { get; init; }
    public required string Table { get; init; }
    public required uint TableOid { get; init; }
    public string? Column { get; init; }
    public string? NewName { get; init; }
    public required string Strategy { get; init; }
    public required MigrationPhase Phase { get; init; }
    public required string SpecJson { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required string CreatedBy { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public required string UpdatedBy { get; init; }
    public long? RowsEstimated { get; init; }
    public long RowsBackfilled { get; init; }
    public string? BackfillCheckpointJson { get; init; }
    public double BackfillSeconds { get; init; }
    public DateTimeOffset? ParityCheckedAt { get; init; }
    public long? ParityRowsChecked { get; init; }
    public long? ParityMismatches { get; init; }
    public string? LastError { get; init; }
    public string? BackfillControlJson { get; init; }
    public string? BackfillStatusJson { get; init; }

    public string? Tag { get; init; }
}
