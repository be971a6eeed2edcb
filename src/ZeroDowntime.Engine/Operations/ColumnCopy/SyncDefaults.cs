using System.Text.Json.Serialization;
using ZeroDowntime.Engine.Catalog;

namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// Where the column's default lives while both columns exist, which decides how the sync trigger
/// tells an omitted column from a written one on INSERT (docs/architecture.md, "Sync semantics").
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<SyncDefaults>))]
internal enum SyncDefaults
{
    /// <summary>No default: an omitted column arrives as NULL, so NULL in one name means "not written".</summary>
    None,

    /// <summary>
    /// A default that gives the same value twice in one statement (a constant, now(), current_user):
    /// both columns carry it, so an omitted name arrives holding the default, and an explicit NULL
    /// or any other value is told apart exactly.
    /// </summary>
    OnBoth,

    /// <summary>
    /// A volatile default (nextval, random(), gen_random_uuid(), clock_timestamp()): only the old
    /// column carries it (two evaluations would store two different values and use two sequence
    /// numbers); the new column takes it over at contract. An explicit NULL written through the new
    /// name cannot be told from an omitted one: it stores the default. Warned about at expand.
    /// </summary>
    OnOldOnly,
}

internal static class SyncDefaultsPlanner
{
    /// <summary>
    /// Whether the column's default is volatile, asked of the server: adding a column with that
    /// default to an empty temporary copy of the table rewrites it exactly when the default is
    /// volatile (PostgreSQL's own contain_volatile_functions; also a constrained domain, which is
    /// treated the same, safely). The default is <paramref name="qualifiedDefault"/>.
    /// </summary>
    public static async Task<SyncDefaults> ChooseAsync(PlanningContext context, TableInfo table, ColumnInfo column, string? qualifiedDefault, CancellationToken ct)
    {
        if (qualifiedDefault is null)
        {
            return SyncDefaults.None;
        }

        var probeColumn = "zdt_probe_default";
        while (table.Column(probeColumn) is not null)
        {
            probeColumn += "_";
        }

        var rewrites = await ServerProbe.RunAsync(
            context,
            $"default of {Sql.Ident.Quote(column.Name)}",
            async probe =>
            {
                await probe.ExecuteAsync(ServerProbe.CopyShape(ServerProbe.Table, table.QualifiedName)).ConfigureAwait(false);
                return await probe.AddColumnRewritesAsync($"{Sql.Ident.Quote(probeColumn)} {column.Type} DEFAULT {qualifiedDefault}").ConfigureAwait(false);
            },
            ct).ConfigureAwait(false);
        return rewrites ? SyncDefaults.OnOldOnly : SyncDefaults.OnBoth;
    }
}
