using System.Globalization;
using Npgsql;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Lets the server check SQL the user wrote (a type, a default, a predicate, an index or a
/// constraint) before anything is planned: the statements run in a transaction that is always
/// rolled back, against temporary copies of the tables' shape (CREATE TEMP TABLE ... (LIKE ...)
/// copies no rows), so nothing is created and no user table is written or locked beyond the
/// ACCESS SHARE that LIKE takes, under the engine's short lock_timeout. Errors come back as
/// InvalidSql with the server's own message, early and before any DDL.
/// </summary>
internal sealed class ServerProbe
{
    /// <summary>The probe's temporary copy of the table being changed.</summary>
    public const string Table = "pg_temp.zdt_probe";

    /// <summary>The probe's temporary copy of a second table (the one a foreign key references).</summary>
    public const string OtherTable = "pg_temp.zdt_probe_ref";

    private const string LockNotAvailable = "55P03";

    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _tx;
    private readonly CancellationToken _ct;
    private string _current = "";

    private ServerProbe(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        _connection = connection;
        _tx = tx;
        _ct = ct;
    }

    /// <summary>
    /// Runs <paramref name="body"/> in a transaction on the planning connection and rolls it back
    /// whatever happens; a statement the server rejects becomes an InvalidSql error about <paramref name="what"/>.
    /// </summary>
    public static async Task<T> RunAsync<T>(PlanningContext context, string what, Func<ServerProbe, Task<T>> body, CancellationToken ct)
    {
        var connection = context.Connection;
        var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        var probe = new ServerProbe(connection, tx, ct);
        try
        {
            await probe.ExecuteAsync(string.Create(CultureInfo.InvariantCulture, $"SET LOCAL lock_timeout = '{(long)context.Options.LockTimeout.TotalMilliseconds}ms'")).ConfigureAwait(false);
            await probe.ExecuteAsync("SET LOCAL check_function_bodies = on").ConfigureAwait(false);
            return await body(probe).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == LockNotAvailable)
        {
            throw new ZdtException(
                ErrorIds.LockRetryTimeoutExceeded,
                ErrorKind.ResourceBusy,
                $"Checking the {what} needs a brief ACCESS SHARE lock on the table, and another session's lock is in the way ({e.MessageText}). Nothing was changed; try again.",
                e);
        }
        catch (PostgresException e) when (Execution.PrivilegeErrors.IsPrivilegeError(e))
        {
            throw Execution.PrivilegeErrors.ForPlanning(connection, e, what);
        }
        catch (PostgresException e)
        {
            throw Rejected(what, e, probe._current);
        }
        finally
        {
            try
            {
                await tx.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                // The connection broke; the server rolled back with it.
            }

            await tx.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>A probe that only needs the server to accept the statements.</summary>
    public static Task ValidateAsync(PlanningContext context, string what, IEnumerable<string> statements, CancellationToken ct)
        => RunAsync(
            context,
            what,
            async probe =>
            {
                foreach (var statement in statements)
                {
                    await probe.ExecuteAsync(statement).ConfigureAwait(false);
                }

                return true;
            },
            ct);

    /// <summary>The statement that makes a temporary, empty copy of a table's columns (and, if asked, its indexes).</summary>
    public static string CopyShape(string probeTable, string qualifiedSource, bool withIndexes = false)
        => $"CREATE TEMP TABLE {probeTable} (LIKE {qualifiedSource}{(withIndexes ? " INCLUDING INDEXES" : "")})";

    public static ZdtException Rejected(string what, PostgresException e, string statement)
    {
        var detail = e.Detail is { Length: > 0 } d ? " " + d : "";
        var hint = e.Hint is { Length: > 0 } h ? " Hint: " + h : "";
        var near = statement.Length > 0 && e.Position > 0 && e.Position <= statement.Length
            ? $" (at: {Snippet(statement, e.Position - 1)})"
            : "";
        return new ZdtException(
            ErrorIds.InvalidSql,
            ErrorKind.InvalidArgument,
            $"The server rejected the {what}: {e.MessageText}{near}.{detail}{hint} Nothing was changed.",
            e);
    }

    public async Task ExecuteAsync(string sql)
    {
        _current = sql;
        await using var cmd = new NpgsqlCommand(sql, _connection, _tx);
        await cmd.ExecuteNonQueryAsync(_ct).ConfigureAwait(false);
        _current = "";
    }

    /// <summary>
    /// Adds a column to the probe's (empty) temporary table and says whether PostgreSQL rewrote the
    /// table for it: pg_relation_filenode changes exactly when the table's storage is replaced.
    /// That is the server's own decision (a volatile default, a constrained domain, an identity or
    /// stored generated column, a server before 11), not a re-implementation of it.
    /// </summary>
    public async Task<bool> AddColumnRewritesAsync(string columnDefinition)
    {
        var before = await FileNodeAsync().ConfigureAwait(false);
        await ExecuteAsync($"ALTER TABLE {Table} ADD COLUMN {columnDefinition}").ConfigureAwait(false);
        return await FileNodeAsync().ConfigureAwait(false) != before;
    }

    /// <summary>The first row of a query, as objects (DBNull as null); values go as parameters $1, $2, ...</summary>
    public async Task<object?[]> RowAsync(string sql, params object[] parameters)
    {
        _current = sql;
        await using var cmd = new NpgsqlCommand(sql, _connection, _tx);
        foreach (var parameter in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        await using var reader = await cmd.ExecuteReaderAsync(_ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(_ct).ConfigureAwait(false))
        {
            throw new InvalidOperationException("The probe query returned no row: " + sql);
        }

        var values = new object?[reader.FieldCount];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
        }

        _current = "";
        return values;
    }

    /// <summary>
    /// Changes a column's type on the probe's copy (made with its indexes) and says whether
    /// PostgreSQL rewrote the table or rebuilt an index for it: the server's own decision
    /// (binary-coercible casts, typmod increases), read from pg_relation_filenode.
    /// </summary>
    public async Task<bool> AlterTypeRewritesAsync(string alterColumnType)
    {
        const string nodes = $"SELECT array_agg(pg_relation_filenode(r) ORDER BY r)::text FROM (SELECT '{Table}'::regclass::oid AS r UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = '{Table}'::regclass) x";
        var before = (await RowAsync(nodes).ConfigureAwait(false))[0];
        await ExecuteAsync($"ALTER TABLE {Table} ALTER COLUMN {alterColumnType}").ConfigureAwait(false);
        var after = (await RowAsync(nodes).ConfigureAwait(false))[0];
        return !Equals(before, after);
    }

    private async Task<long> FileNodeAsync()
        => Convert.ToInt64((await RowAsync($"SELECT pg_relation_filenode('{Table}')::bigint").ConfigureAwait(false))[0], CultureInfo.InvariantCulture);

    private static string Snippet(string statement, int at)
    {
        var end = Math.Min(statement.Length, at + 40);
        return statement[at..end].ReplaceLineEndings(" ").Trim();
    }
}
