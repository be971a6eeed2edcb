using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// A version schema: a schema of views, one per table, that present the tables with the new
/// column names of one application release. The new release puts it first in its search_path.
/// ZeroDowntime creates it, marks it with a comment (so that a schema that merely has the same
/// name is never used or dropped), and drops it when its last view goes.
/// </summary>
internal static class VersionSchema
{
    /// <summary>The start of the comment on every version schema we create; how we recognise ours.</summary>
    public const string Marker = "ZeroDowntime version schema";

    public const string Comment = Marker + ": views presenting tables under the new column names of one application release, until Complete-Contract. Created and dropped by ZeroDowntime; keep other objects out.";

    /// <summary>
    /// The name used when the request names none: one version schema per table (zdt_v_ + schema +
    /// table, shortened with a hash past 63 bytes). Deterministic, so a second rename of the same
    /// table without -VersionSchema joins the same view. Several tables move together only under
    /// a version schema named explicitly (e.g. after the release: app_v42).
    /// </summary>
    public static string DefaultName(string schema, string table) => Ident.Derive("zdt_v_", schema, table);

    /// <summary>Refuses names that cannot or must not be a version schema.</summary>
    public static void ValidateName(string name, string tableSchema, string ledgerSchema)
    {
        Ident.Validate(name, "version schema name");
        string? why = null;
        if (name == tableSchema)
        {
            why = "is the table's own schema; the version schema holds views under the tables' names, so it must be a different schema";
        }
        else if (name == ledgerSchema)
        {
            why = "is ZeroDowntime's ledger schema";
        }
        else if (name.StartsWith("pg_", StringComparison.Ordinal) || name == "information_schema")
        {
            why = "is reserved for PostgreSQL's system schemas";
        }

        if (why is not null)
        {
            throw new ZdtException(ErrorIds.InvalidVersionSchema, ErrorKind.InvalidArgument, $"The version schema {Ident.Quote(name)} {why}. Choose another name; nothing was changed.")
            { TargetObject = name };
        }
    }

    /// <summary>Whether the schema exists and whether it carries our marker.</summary>
    public static async Task<(bool Exists, bool IsOurs)> ReadAsync(PlanningContext context, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1", context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            return (false, false);
        }

        var comment = reader.IsDBNull(0) ? "" : reader.GetString(0);
        var isOurs = comment.StartsWith(Marker, StringComparison.Ordinal);
        await reader.DisposeAsync().ConfigureAwait(false);
        if (isOurs)
        {
            // A comment anyone could have written: a schema (or a view in it) owned by a role the
            // new application version should not trust would let that role replace the views
            // the application reads and writes through.
            await LedgerTrust.RequireTrustedVersionSchemaAsync(context.Connection, name, ct).ConfigureAwait(false);
        }

        return (true, isOurs);
    }

    public static ZdtException NotOursError(string name) => new(
        "VersionSchemaNotOurs",
        ErrorKind.ResourceExists,
        $"A schema {Ident.Quote(name)} already exists and was not created by ZeroDowntime as a version schema (its comment does not start with '{Marker}'). ZeroDowntime will not put views into, or later drop, a schema it does not own; choose another -VersionSchema. Nothing was changed.")
    { TargetObject = name };

    /// <summary>
    /// How many objects would remain in the schema once the given relations are dropped (every
    /// object in a schema records a dependency on it). A version schema is dropped only when this
    /// is zero; DROP SCHEMA without CASCADE then guards against anything created meanwhile.
    /// </summary>
    public static async Task<long> ObjectsLeftAfterAsync(PlanningContext context, string name, IReadOnlyCollection<uint> dropped, CancellationToken ct)
    {
        const string sql = """
            SELECT count(*) FROM pg_depend d
            WHERE d.refclassid = 'pg_namespace'::regclass
              AND d.refobjid = (SELECT oid FROM pg_namespace WHERE nspname = $1)
              AND NOT (d.classid = 'pg_class'::regclass AND d.objid = ANY ($2))
            """;
        await using var cmd = new NpgsqlCommand(sql, context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        cmd.Parameters.Add(new NpgsqlParameter { Value = dropped.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Oid });
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }
}
