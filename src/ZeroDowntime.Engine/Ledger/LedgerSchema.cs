using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Ledger;

/// <summary>
/// The shape of the ledger and how an older one is brought up to date. A ledger lives for years in
/// databases that several versions of the module touch, so its shape only ever grows: version 1 is
/// the table as first released, and every later version is an idempotent step added to
/// <see cref="Upgrades"/>. A new ledger is made by the same path (version 1, then every step), so a
/// new ledger and an upgraded one cannot differ. The version is kept in the schema's comment.
/// </summary>
internal static partial class LedgerSchema
{
    /// <summary>One step from the version before it to <paramref name="Version"/>; its SQL is idempotent.</summary>
    internal sealed record Upgrade(int Version, string Description, Func<LedgerNames, string> Sql);

    /// <summary>
    /// Every step after version 1, in order. Never edit a released step: add a new one (an old
    /// ledger may be upgraded by any later version of the module). Columns only: old versions of
    /// the module keep working on a newer ledger because they name the columns they use.
    /// </summary>
    internal static readonly IReadOnlyList<Upgrade> Upgrades =
    [
        new(2, "a caller-chosen label on each migration (-Tag), so a later pipeline stage finds the migration an earlier one started",
            n => $"""
                ALTER TABLE {n.Migration} ADD COLUMN IF NOT EXISTS tag text;
                CREATE INDEX IF NOT EXISTS migration_by_tag ON {n.Migration} (tag) WHERE tag IS NOT NULL;
                """),
        new(3, "a backfill's operator control (pause, retuning: Suspend-Backfill, Resume-Backfill, Set-BackfillThrottle) and its heartbeat (running, paused, throttled or stopped and why, rate, ETA), which Get-Migration shows",
            n => $"""
                ALTER TABLE {n.Migration} ADD COLUMN IF NOT EXISTS backfill_control jsonb;
                ALTER TABLE {n.Migration} ADD COLUMN IF NOT EXISTS backfill_status jsonb;
                """),
    ];

    public static LedgerNames For(string schema)
        => new(Ident.Quote(schema), Ident.Qualify(schema, "migration"), Ident.Qualify(schema, "migration_event"));

    public static int CurrentVersion => Upgrades.Count == 0 ? 1 : Upgrades[^1].Version;

    /// <summary>The ledger as version 1 made it; only ever followed by <see cref="Upgrades"/>.</summary>
    public static string Version1Sql(LedgerNames n) => $"""
        CREATE SCHEMA IF NOT EXISTS {n.Schema};
        CREATE TABLE IF NOT EXISTS {n.Migration} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            operation text NOT NULL,
            schema_name text NOT NULL,
            table_name text NOT NULL,
            table_oid oid NOT NULL,
            column_name text,
            new_name text,
            strategy text NOT NULL,
            phase text NOT NULL,
            spec jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            created_by text NOT NULL DEFAULT current_user,
            created_app text DEFAULT current_setting('application_name'),
            created_client inet DEFAULT inet_client_addr(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_by text NOT NULL DEFAULT current_user,
            rows_estimated bigint,
            rows_backfilled bigint NOT NULL DEFAULT 0,
            backfill_checkpoint jsonb,
            backfill_seconds double precision NOT NULL DEFAULT 0,
            parity_checked_at timestamptz,
            parity_rows_checked bigint,
            parity_mismatches bigint,
            last_error text,
            completed_at timestamptz
        );
        CREATE UNIQUE INDEX IF NOT EXISTS migration_one_active_per_table ON {n.Migration} (table_oid)
            WHERE phase NOT IN ('completed', 'undone', 'failed');
        CREATE TABLE IF NOT EXISTS {n.Event} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            migration_id bigint NOT NULL REFERENCES {n.Migration} (id),
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            action text NOT NULL,
            from_phase text,
            to_phase text NOT NULL,
            by_user text NOT NULL DEFAULT current_user,
            by_app text DEFAULT current_setting('application_name'),
            by_client inet DEFAULT inet_client_addr(),
            sql text,
            message text
        );
        CREATE INDEX IF NOT EXISTS migration_event_by_migration ON {n.Event} (migration_id, id);
        """;

    /// <summary>The steps that take a ledger of <paramref name="fromVersion"/> to the current one, then the comment that records it.</summary>
    public static string UpgradeSql(LedgerNames n, int fromVersion)
        => string.Concat(Upgrades.Where(u => u.Version > fromVersion).Select(u => u.Sql(n) + "\n"))
           + VersionCommentSql(n, CurrentVersion);

    public static string VersionCommentSql(LedgerNames n, int version)
        => $"COMMENT ON SCHEMA {n.Schema} IS 'ZeroDowntime migration ledger (version {version.ToString(CultureInfo.InvariantCulture)}). Do not edit by hand.';";

    /// <summary>The version an existing ledger records (1 when its comment is missing or unreadable: the first release's shape).</summary>
    public static async Task<int> ReadVersionAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, string schemaName, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT pg_catalog.obj_description(n.oid, 'pg_namespace') FROM pg_catalog.pg_namespace n WHERE n.nspname = $1", connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = schemaName });
        var comment = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
        var match = comment is null ? null : VersionInComment().Match(comment);
        return match is { Success: true } ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 1;
    }

    /// <summary>
    /// The ledger is older than this module and the current role cannot upgrade it: only its owner
    /// (or a member of the owner, or a superuser) can add columns to its tables.
    /// </summary>
    public static ZdtException OutdatedError(string schemaName, string database, int version, string owner)
        => new(
            ErrorIds.LedgerOutdated,
            ErrorKind.InvalidOperation,
            $"The ledger schema {Ident.Quote(schemaName)} of database {Ident.Quote(database)} has version {version}, older than this module's version {CurrentVersion}, and only its owner {Ident.Quote(owner)} (or a superuser) can upgrade it. "
            + "Run any ZeroDowntime command in this database once as that role (the upgrade only adds columns and takes a moment; older versions of the module keep working on the upgraded ledger). Nothing was changed.")
        { TargetObject = schemaName };

    [GeneratedRegex(@"\(version (\d+)\)")]
    private static partial Regex VersionInComment();
}

/// <summary>The ledger's objects as quoted, qualified names, for the DDL above.</summary>
internal sealed record LedgerNames(string Schema, string Migration, string Event);
