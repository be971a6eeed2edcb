using Npgsql;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// What every operation that serves a table through an updatable view shares: the CREATE VIEW
/// (columns listed explicitly, security_invoker where the server has it), carrying the table's
/// grants over to the view, and refusing to drop a view something else is built on.
/// </summary>
internal static class CompatibilityView
{
    /// <summary>
    /// CREATE VIEW over one table. Each select item is a quoted column, optionally aliased; a view
    /// like this is automatically updatable, so writes, defaults, sequences, constraints and
    /// triggers all act on the table.
    /// </summary>
    public static string CreateSql(PlanningContext context, string view, IEnumerable<string> selectList, string table)
    {
        var options = context.SupportsSecurityInvokerViews ? " WITH (security_invoker = true)" : "";
        return $"CREATE VIEW {view}{options} AS SELECT {string.Join(", ", selectList)} FROM {table}";
    }

    /// <summary>One grant of the table, repeated on another relation (a column grant on the same-named column).</summary>
    public static string GrantSql(GrantInfo grant, string relation)
    {
        var grantee = grant.Grantee is null ? "PUBLIC" : Ident.Quote(grant.Grantee);
        var columns = grant.Column is null ? "" : $" ({Ident.Quote(grant.Column)})";
        var option = grant.Grantable ? " WITH GRANT OPTION" : "";
        return $"GRANT {grant.Privilege}{columns} ON {relation} TO {grantee}{option}";
    }

    public static async Task<string> CurrentUserAsync(PlanningContext context, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT current_user", context.Connection);
        return (string)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    /// <summary>Refuses to drop a view that other views, materialized views or rules are built on.</summary>
    public static void RequireNoDependents(TableInfo view, string what, string remedy)
    {
        if (view.Dependents.Count > 0)
        {
            throw new ZdtException(
                ErrorIds.CompatibilityViewInUse,
                ErrorKind.InvalidOperation,
                $"Cannot {what}: other objects are built on the compatibility view {view.QualifiedName}: {string.Join(", ", view.Dependents.Select(d => d.QualifiedName))}. {remedy} first; nothing was changed.")
            { TargetObject = view.QualifiedName };
        }
    }
}
