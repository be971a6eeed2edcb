using Npgsql;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Execution;

/// <summary>
/// Turns the server's "permission denied" / "must be owner" (SQLSTATE 42501) into an error that
/// says which role lacks what on which object and how to get it, instead of a raw server error.
/// </summary>
internal static class PrivilegeErrors
{
    public static bool IsPrivilegeError(Exception e) => e is PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege };

    /// <summary>
    /// For DDL on <paramref name="table"/> (quoted, qualified): names the role, the table's owner and
    /// the two ways to get the right (run as the owner, or be made a member of it).
    /// </summary>
    public static async Task<ZdtException> ForDdlAsync(NpgsqlConnection connection, PostgresException e, string doing, string table)
    {
        var (user, owner) = await RolesAsync(connection, table).ConfigureAwait(false);
        return new ZdtException(
            ErrorIds.InsufficientPrivilege,
            ErrorKind.PermissionDenied,
            $"{doing} was refused: {e.MessageText}. Changing the definition of {table} (ALTER TABLE, CREATE/DROP INDEX, CREATE TRIGGER, VALIDATE, COMMENT) is reserved to its owner{(owner is null ? "" : $", role {owner}")}; role {user} is not that owner or a member of it. Run the command as {owner ?? "the owner"}, or have an administrator run GRANT {owner ?? "<owner>"} TO {user}. Nothing was changed by this step.",
            e)
        { TargetObject = table };
    }

    /// <summary>For reading and writing rows of <paramref name="table"/> (backfill, parity): names the table privileges needed.</summary>
    public static async Task<ZdtException> ForRowsAsync(NpgsqlConnection connection, PostgresException e, string doing, string table, string privileges)
    {
        var (user, _) = await RolesAsync(connection, table).ConfigureAwait(false);
        return new ZdtException(
            ErrorIds.InsufficientPrivilege,
            ErrorKind.PermissionDenied,
            $"{doing} was refused: {e.MessageText}. Role {user} needs {privileges} on {table} (and SELECT, INSERT, UPDATE on the ledger's tables): GRANT {privileges} ON {table} TO {user}. What committed before is kept; run the command again once the privilege is granted.",
            e)
        { TargetObject = table };
    }

    /// <summary>
    /// Refuses, before anything runs, when the current role lacks <paramref name="privilege"/> on
    /// any of <paramref name="columns"/> of <paramref name="table"/> (quoted, qualified): the DDL
    /// would fail with a bare "permission denied" halfway through otherwise.
    /// </summary>
    public static async Task RequireOnColumnsAsync(NpgsqlConnection connection, string table, IReadOnlyList<string> columns, string privilege, string neededFor, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT pg_catalog.quote_ident(current_user), bool_and(pg_catalog.has_column_privilege($1::pg_catalog.regclass, c, $3)) FROM pg_catalog.unnest($2::text[]) c", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = table });
        cmd.Parameters.Add(new NpgsqlParameter { Value = columns.ToArray() });
        cmd.Parameters.Add(new NpgsqlParameter { Value = privilege });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        if (reader.IsDBNull(1) || reader.GetBoolean(1))
        {
            return;
        }

        var user = reader.GetString(0);
        throw new ZdtException(
            ErrorIds.InsufficientPrivilege,
            ErrorKind.PermissionDenied,
            $"{neededFor} needs the {privilege} privilege on {table} ({string.Join(", ", columns.Select(Sql.Ident.Quote))}), which role {user} does not have. Have the table's owner run GRANT {privilege} ON {table} TO {user}, or run the command as a role that has it. Nothing was changed.")
        { TargetObject = table };
    }

    /// <summary>For a statement the planning probe ran on a copy of a table's shape: the server's message names the object.</summary>
    public static ZdtException ForPlanning(NpgsqlConnection connection, PostgresException e, string what)
        => new(
            ErrorIds.InsufficientPrivilege,
            ErrorKind.PermissionDenied,
            $"Checking the {what} was refused: {e.MessageText}. Role {connection.UserName} needs that privilege on the object the server names (checking reads the shape of the tables involved, which needs SELECT on them); have the object's owner grant it, or run the command as a role that has it. Nothing was changed.",
            e);

    private static async Task<(string User, string? Owner)> RolesAsync(NpgsqlConnection connection, string table)
    {
        try
        {
            await using var cmd = new NpgsqlCommand("SELECT quote_ident(current_user), (SELECT quote_ident(pg_get_userbyid(relowner)) FROM pg_class WHERE oid = to_regclass($1))", connection);
            cmd.Parameters.Add(new NpgsqlParameter { Value = table });
            await using var reader = await cmd.ExecuteReaderAsync().ConfigureAwait(false);
            await reader.ReadAsync().ConfigureAwait(false);
            return (reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1));
        }
        catch (NpgsqlException)
        {
            return ("the current role", null);
        }
    }
}
