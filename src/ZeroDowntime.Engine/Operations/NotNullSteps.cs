using Npgsql;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Making a column NOT NULL without scanning the table under ACCESS EXCLUSIVE (what a plain
/// SET NOT NULL does): add CHECK (col IS NOT NULL) NOT VALID (a catalog change), VALIDATE it in
/// its own transaction (a scan under SHARE UPDATE EXCLUSIVE, which lets reads and writes go on),
/// then SET NOT NULL, which PostgreSQL 12+ proves from the validated check without a scan, and drop
/// the check. Used by AddColumn (at contract) and SetColumnNotNull. Every plan is derived from the
/// catalog, so a phase re-run after a failure continues where it stopped.
/// </summary>
internal static class NotNullSteps
{
    /// <summary>SET NOT NULL uses a validated CHECK (col IS NOT NULL) instead of scanning from PostgreSQL 12 on.</summary>
    public const int SetNotNullSkipsScanFrom = 120000;

    /// <summary>The name of the helper check constraint for a column.</summary>
    public static string CheckName(string column) => Ident.Derive("zdt_not_null_", column);

    /// <summary>Our helper check on the table, if it is there; refuses a same-named constraint that is something else.</summary>
    public static ConstraintInfo? FindCheck(TableInfo table, ColumnInfo column, string checkName)
    {
        var found = table.Constraints.FirstOrDefault(c => c.Name == checkName);
        if (found is null)
        {
            return null;
        }

        if (found.Type != ConstraintType.Check || found.Columns.Count != 1 || found.Columns[0] != column.Number)
        {
            throw new ZdtException(
                ErrorIds.NameTaken,
                ErrorKind.ResourceExists,
                $"{table.QualifiedName} already has a constraint named {Ident.Quote(checkName)} ({found.Definition}), which ZeroDowntime needs for the NOT NULL check of {Ident.Quote(column.Name)}. Rename or drop it; nothing was changed.")
            { TargetObject = checkName };
        }

        return found;
    }

    /// <summary>The steps that leave a validated CHECK (col IS NOT NULL): add it NOT VALID, then validate, each only if not done yet.</summary>
    public static IReadOnlyList<DdlStep> AddAndValidate(TableInfo table, ColumnInfo column, string checkName)
    {
        var existing = FindCheck(table, column, checkName);
        var steps = new List<DdlStep>();
        var check = Ident.Quote(checkName);
        if (existing is null)
        {
            steps.Add(new DdlStep(
                $"Add CHECK ({Ident.Quote(column.Name)} IS NOT NULL) NOT VALID",
                new[] { $"ALTER TABLE {table.QualifiedName} ADD CONSTRAINT {check} CHECK ({Ident.Quote(column.Name)} IS NOT NULL) NOT VALID" },
                LockLevel.AccessExclusive,
                table.QualifiedName,
                "NOT VALID skips the existing rows, so this is a catalog change held for milliseconds; from now on every inserted or updated row must have a value"));
        }

        if (existing is not { Validated: true })
        {
            steps.Add(new DdlStep(
                $"Validate the check {check} against the existing rows",
                new[] { $"ALTER TABLE {table.QualifiedName} VALIDATE CONSTRAINT {check}" },
                LockLevel.ShareUpdateExclusive,
                table.QualifiedName,
                "scans the table in its own transaction under SHARE UPDATE EXCLUSIVE, which lets the application read and write meanwhile"));
        }

        return steps;
    }

    /// <summary>
    /// <see cref="AddAndValidate"/>, or on a partitioned table the same per partition and then per
    /// level (<see cref="Partitions.PartitionedConstraint"/>): a NOT VALID check on the parent would
    /// lock every partition at once, and its VALIDATE scan them all in one transaction.
    /// </summary>
    public static async Task<IReadOnlyList<DdlStep>> AddAndValidateAsync(PlanningContext context, TableInfo table, ColumnInfo column, string checkName, CancellationToken ct)
        => table.Kind == RelationKind.PartitionedTable
            ? (await ReadPartitionedCheckAsync(context, table, column.Name, checkName, ct).ConfigureAwait(false)).AddAndValidate($"{Ident.Quote(column.Name)} IS NOT NULL")
            : AddAndValidate(table, column, checkName);

    /// <summary>Where the helper check of a partitioned table's column stands on each relation of its tree.</summary>
    public static async Task<Partitions.PartitionedConstraint> ReadPartitionedCheckAsync(PlanningContext context, TableInfo table, string column, string checkName, CancellationToken ct)
    {
        var tree = await Partitions.PartitionTree.ReadAsync(context.Connection, table.Oid, ct).ConfigureAwait(false);
        return await Partitions.PartitionedConstraint.ReadAsync(context.Connection, tree, checkName, column, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The step that turns the validated check into the column's NOT NULL and drops the check; null
    /// before PostgreSQL 12, where SET NOT NULL would scan under ACCESS EXCLUSIVE (the validated check then stays).
    /// </summary>
    public static DdlStep? SetNotNullAndDropCheck(TableInfo table, ColumnInfo column, string checkName, int serverVersion)
    {
        var existing = FindCheck(table, column, checkName);
        var check = Ident.Quote(checkName);
        if (column.NotNull)
        {
            return existing is null
                ? null
                : new DdlStep($"Drop the helper check {check}", new[] { $"ALTER TABLE {table.QualifiedName} DROP CONSTRAINT {check}" }, LockLevel.AccessExclusive, table.QualifiedName, "a catalog change held for milliseconds");
        }

        if (serverVersion < SetNotNullSkipsScanFrom)
        {
            return null;
        }

        return new DdlStep(
            $"Set {Ident.Quote(column.Name)} NOT NULL and drop the helper check {check}",
            new[]
            {
                $"ALTER TABLE {table.QualifiedName} ALTER COLUMN {Ident.Quote(column.Name)} SET NOT NULL",
                $"ALTER TABLE {table.QualifiedName} DROP CONSTRAINT {check}",
            },
            LockLevel.AccessExclusive,
            table.QualifiedName,
            "PostgreSQL sees the validated CHECK (col IS NOT NULL) and skips the scan, so both are catalog changes held for milliseconds");
    }

    /// <summary>What a pre-12 server keeps instead of attnotnull, for summaries.</summary>
    public static string KeptCheckNote(int serverVersion)
        => serverVersion < SetNotNullSkipsScanFrom
            ? " (before PostgreSQL 12, SET NOT NULL would scan the table under ACCESS EXCLUSIVE, so the validated CHECK constraint is kept in its place)"
            : "";

    /// <summary>How many rows have NULL in the column (a read-only scan).</summary>
    public static async Task<long> CountNullsAsync(PlanningContext context, TableInfo table, ColumnInfo column, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM {table.QualifiedName} WHERE {Ident.Quote(column.Name)} IS NULL", context.Connection);
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    public static ZdtException NullsPresent(TableInfo table, ColumnInfo column, long nulls, string advice)
        => new(
            "NullsPresent",
            ErrorKind.InvalidData,
            $"{nulls:N0} row(s) of {table.QualifiedName} have NULL in {Ident.Quote(column.Name)}, so it cannot be made NOT NULL. {advice} Nothing was changed.")
        { TargetObject = nulls };
}
