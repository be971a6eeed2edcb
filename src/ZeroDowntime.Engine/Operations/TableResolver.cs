using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>The checks every operation makes before planning: the table exists, is a table, and is free.</summary>
internal static class TableResolver
{
    /// <summary>
    /// Reads the table or fails with a specific error: not found (suggesting a differently-cased
    /// match), not a table (a view, a partition, a foreign table...), or busy with another migration.
    /// </summary>
    public static async Task<TableInfo> RequireFreeTableAsync(PlanningContext context, string schema, string table, bool allowPartitioned, CancellationToken ct)
    {
        var info = await RequireTableAsync(context, schema, table, allowPartitioned, ct).ConfigureAwait(false);
        var active = await context.Ledger.FindActiveAsync(context.Connection, info.Oid, ct).ConfigureAwait(false);
        if (active is not null)
        {
            throw MigrationLedger.ActiveMigrationError(schema, table, active);
        }

        return info;
    }

    /// <summary>
    /// Reads the table or fails like <see cref="RequireFreeTableAsync"/>, but accepts a table with an
    /// active migration: for operations that run to their end at once and never hold the table (an index).
    /// With <paramref name="mustOwn"/> (every operation that alters the table) a role that could not
    /// alter it is refused here, at planning, before anything (the ledger included) is created.
    /// </summary>
    public static async Task<TableInfo> RequireTableAsync(PlanningContext context, string schema, string table, bool allowPartitioned, CancellationToken ct, bool mustOwn = true)
    {
        Ident.Validate(schema, "schema name");
        Ident.Validate(table, "table name");
        var info = await context.Catalog.ReadTableAsync(schema, table, ct).ConfigureAwait(false);
        if (info is null)
        {
            var similar = await context.Catalog.SimilarRelationNamesAsync(schema, table, ct).ConfigureAwait(false);
            var hint = similar.Count > 0 ? $" Names are exact (case-sensitive); did you mean {string.Join(" or ", similar.Select(n => Ident.Quote(n)))}?" : "";
            throw new ZdtException(ErrorIds.TableNotFound, ErrorKind.ObjectNotFound, $"Table {Ident.Qualify(schema, table)} does not exist.{hint}")
            { TargetObject = Ident.Qualify(schema, table) };
        }

        RefuseLedger(context, info);
        var refusal = info.Kind switch
        {
            RelationKind.Table when info.IsPartition => $"{info.QualifiedName} is a partition; migrate its partitioned parent table instead.",
            RelationKind.Table => null,
            RelationKind.PartitionedTable when allowPartitioned => null,
            RelationKind.PartitionedTable => $"{info.QualifiedName} is a partitioned table, which this operation does not support yet.",
            RelationKind.View => $"{info.QualifiedName} is a view, not a table{await ViewHintAsync(context, info, ct).ConfigureAwait(false)}.",
            RelationKind.MaterializedView => $"{info.QualifiedName} is a materialized view, not a table.",
            RelationKind.ForeignTable => $"{info.QualifiedName} is a foreign table; its data lives on another server, so change it there.",
            _ => $"{info.QualifiedName} is a {info.Kind}, not a table.",
        };
        if (refusal is not null)
        {
            throw new ZdtException(ErrorIds.NotATable, ErrorKind.InvalidArgument, refusal + " Nothing was changed.") { TargetObject = info.QualifiedName };
        }

        if (mustOwn)
        {
            await RequireOwnerPrivilegesAsync(context, info, ct).ConfigureAwait(false);
        }

        return info;
    }

    /// <summary>
    /// The ledger's own tables are never the target of an operation: a migration of them would
    /// change the record it is tracked in (and its contract could never finish).
    /// </summary>
    public static void RefuseLedger(PlanningContext context, TableInfo table)
    {
        if (table.Schema == context.Ledger.SchemaName)
        {
            throw new ZdtException(
                ErrorIds.LedgerNotATarget,
                ErrorKind.InvalidArgument,
                $"{table.QualifiedName} belongs to ZeroDowntime's migration ledger (schema {Ident.Quote(context.Ledger.SchemaName)}); ZeroDowntime does not migrate its own ledger. Nothing was changed.")
            { TargetObject = table.QualifiedName };
        }
    }

    /// <summary>
    /// ALTER TABLE, CREATE INDEX and the rest need the privileges of the table's owner (being it,
    /// inheriting from it, or a superuser); without them the first DDL step would fail with a bare
    /// "must be owner of table".
    /// </summary>
    private static async Task RequireOwnerPrivilegesAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE'), CURRENT_USER::text FROM pg_catalog.pg_class c WHERE c.oid = $1", context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = table.Oid, NpgsqlDbType = NpgsqlDbType.Oid });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false) || reader.GetBoolean(0))
        {
            return;
        }

        throw new ZdtException(
            ErrorIds.NotTableOwner,
            ErrorKind.PermissionDenied,
            $"{Ident.Quote(reader.GetString(1))} cannot change {table.QualifiedName}: changing a table's definition needs the privileges of its owner, {Ident.Quote(table.Owner)}. "
            + "Connect as the owner, as a role that inherits from it (GRANT it to you), or as a superuser. Nothing was changed.")
        { TargetObject = table.QualifiedName };
    }

    /// <summary>Fails when a name is already used in the schema by any relation or type.</summary>
    public static async Task RequireNameFreeAsync(PlanningContext context, string schema, string name, CancellationToken ct)
    {
        Ident.Validate(name, "new name");
        var use = await context.Catalog.DescribeNameUseAsync(schema, name, ct).ConfigureAwait(false);
        if (use is not null)
        {
            throw new ZdtException(ErrorIds.NameTaken, ErrorKind.ResourceExists, $"The name {Ident.Qualify(schema, name)} is already used by a {use}. Choose another name; nothing was changed.")
            { TargetObject = Ident.Qualify(schema, name) };
        }
    }

    private static async Task<string> ViewHintAsync(PlanningContext context, TableInfo view, CancellationToken ct)
    {
        // A compatibility view we created still carries the table's old name: point at the migration.
        var rows = await context.Ledger.QueryAsync(context.Connection, new MigrationQuery { Schema = view.Schema, Table = view.Name, ActiveOnly = true }, ct).ConfigureAwait(false);
        var owner = rows.FirstOrDefault(r => r.Table == view.Name);
        return owner is null ? "" : $" (the compatibility view of migration {owner.Id}, which renamed it to {Ident.Quote(owner.NewName ?? "?")}; complete or undo that migration first)";
    }
}
