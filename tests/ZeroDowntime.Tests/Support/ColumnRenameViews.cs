using Npgsql;
using ZeroDowntime.Engine;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests.Support;

/// <summary>Helpers for column renames by view (version schemas).</summary>
public static class ColumnRenameViews
{
    public static ColumnRenameRequest ViewRequest(string table, string column, string newName, string? version, string schema = "public")
        => new(schema, table, column, newName) { Strategy = RenameStrategy.View, VersionSchema = version };

    /// <summary>Plans and runs a column rename by view, as New-ColumnRename -Strategy View does.</summary>
    public static async Task<Migration> RenameColumnByViewAsync(this MigrationEngine engine, string table, string column, string newName, string? version, string schema = "public")
        => await engine.RunAsync(await engine.PlanColumnRenameAsync(ViewRequest(table, column, newName, version, schema)));

    public static async Task<IReadOnlyList<Migration>> CompleteVersionAsync(this MigrationEngine engine, string version)
        => await engine.RunVersionAsync(await engine.PlanContractVersionAsync(version));

    public static async Task<IReadOnlyList<Migration>> UndoVersionAsync(this MigrationEngine engine, string version)
        => await engine.RunVersionAsync(await engine.PlanUndoVersionAsync(version));

    /// <summary>
    /// A connection as the new application version opens it: the version schema first in
    /// search_path (set by the connection string, as the migration's Details say), unpooled.
    /// </summary>
    public static async Task<NpgsqlConnection> OpenWithSearchPathAsync(this TestDatabase db, string searchPath)
    {
        var builder = new NpgsqlConnectionStringBuilder(db.ConnectionString) { SearchPath = searchPath, Pooling = false };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    public static async Task<T?> ScalarAsync<T>(this NpgsqlConnection connection, string sql, params object[] parameters)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters)
        {
            cmd.Parameters.AddWithValue(p);
        }

        var value = await cmd.ExecuteScalarAsync();
        return value is null or DBNull ? default : (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static async Task<int> ExecuteAsync(this NpgsqlConnection connection, string sql, params object[] parameters)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters)
        {
            cmd.Parameters.AddWithValue(p);
        }

        return await cmd.ExecuteNonQueryAsync();
    }
}
