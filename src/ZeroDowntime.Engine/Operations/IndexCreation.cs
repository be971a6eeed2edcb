using Npgsql;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;
using ZeroDowntime.Engine.Operations.Partitions;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// Create an index with CREATE INDEX CONCURRENTLY: built under SHARE UPDATE EXCLUSIVE, so the
/// application keeps reading and writing (a plain CREATE INDEX holds SHARE, which blocks every
/// write for the whole build). A failed concurrent build leaves an INVALID index that still slows
/// every write; it is dropped (DROP INDEX CONCURRENTLY) and the error says why, e.g. how many keys
/// of a unique index are duplicated. Afterwards pg_index.indisvalid is checked. One shot: recorded
/// as completed; Remove-Index drops it again.
/// </summary>
internal sealed class IndexCreation : OneShotOperation
{
    public const string KindName = "CreateIndex";

    private readonly Spec _spec;

    public IndexCreation(Spec spec)
    {
        _spec = spec;
    }

    public sealed record Spec(
        string Schema,
        string Table,
        string? Name,
        IReadOnlyList<string> Columns,
        IReadOnlyList<string> Expressions,
        IReadOnlyList<string> Include,
        string? Where,
        string? Method,
        bool Unique);

    public override string Kind => KindName;

    private string Name => _spec.Name ?? DefaultName(_spec);

    /// <summary>The index's name: as given, or derived from the table and keys as PostgreSQL would.</summary>
    public string IndexName => Name;

    private string QualifiedIndex => Ident.Qualify(_spec.Schema, Name);

    public override async Task<ExpandDesign> PlanExpandAsync(PlanningContext context, CancellationToken ct)
    {
        if (_spec.Columns.Count == 0 && _spec.Expressions.Count == 0)
        {
            throw new ZdtException(ErrorIds.NoIndexKey, ErrorKind.InvalidArgument, "An index needs at least one key column or expression. Nothing was changed.");
        }

        foreach (var expression in _spec.Expressions)
        {
            SqlTokenizer.RequireFragment(expression, "index expression");
        }

        if (_spec.Where is not null)
        {
            SqlTokenizer.RequireFragment(_spec.Where, "index predicate (-Where)");
        }

        if (_spec.Method is not null)
        {
            Ident.Validate(_spec.Method, "index method");
        }

        var table = await TableResolver.RequireTableAsync(context, _spec.Schema, _spec.Table, allowPartitioned: true, ct).ConfigureAwait(false);
        RequireColumns(table, _spec.Columns.Concat(_spec.Include));
        Ident.Validate(Name, "index name");
        if (table.Kind == RelationKind.PartitionedTable)
        {
            return await PlanPartitionedAsync(context, table, ct).ConfigureAwait(false);
        }

        await TableResolver.RequireNameFreeAsync(context, _spec.Schema, Name, ct).ConfigureAwait(false);

        // The server checks the expressions, predicate and method on an empty copy of the table.
        await ServerProbe.ValidateAsync(
            context,
            "index definition",
            new[] { ServerProbe.CopyShape(ServerProbe.Table, table.QualifiedName), CreateSql(ServerProbe.Table, "zdt_probe_index", concurrently: false) },
            ct).ConfigureAwait(false);

        var step = new DdlStep(
            $"Build the {(_spec.Unique ? "unique " : "")}index {Ident.Quote(Name)} concurrently",
            new[] { CreateSql(table.QualifiedName, Ident.Quote(Name), concurrently: true) },
            LockLevel.ShareUpdateExclusive,
            table.QualifiedName,
            "CONCURRENTLY builds the index while the application keeps reading and writing (SHARE UPDATE EXCLUSIVE blocks only other DDL and VACUUM); it waits for transactions already running on the table, which blocks no one, and cannot run inside a transaction block")
        {
            Transactional = false,
            CleanupOnFailure = new[] { DropSql() },
            LockTimeout = context.ConcurrentLockTimeout,
        };
        return Design(table, $"Create the {(_spec.Unique ? "unique " : "")}index {Ident.Quote(Name)} on {table.QualifiedName} concurrently", new[] { step });
    }

    private ExpandDesign Design(TableInfo table, string summary, IReadOnlyList<DdlStep> steps)
    {
        var spec = _spec with { Name = Name };
        return new ExpandDesign(
            table,
            summary,
            steps,
            Column: _spec.Columns.Count == 1 && _spec.Expressions.Count == 0 ? _spec.Columns[0] : null,
            NewName: null,
            Strategy: "Concurrent",
            SpecJson: MigrationLedger.ToJson(spec),
            RowsEstimated: null);
    }

    /// <summary>
    /// An index on a partitioned table, built partition by partition (<see cref="PartitionedIndexBuild"/>).
    /// A parent index of this name that is INVALID and equivalent is the unfinished build of an
    /// earlier run (the process was killed): planning continues it instead of refusing the name.
    /// </summary>
    private async Task<ExpandDesign> PlanPartitionedAsync(PlanningContext context, TableInfo table, CancellationToken ct)
    {
        var tree = await PartitionTree.ReadAsync(context.Connection, table.Oid, ct).ConfigureAwait(false);
        if (_spec.Unique)
        {
            tree.RequireUniqueKeyAllowed(_spec.Columns, "unique index");
        }

        // The server checks the definition on an empty copy, and tells how it names an index of
        // these columns (zdt_probe_<columns>_idx): the partitions' indexes are named as a plain
        // CREATE INDEX on the parent would name them.
        var (suffix, definition) = await ServerProbe.RunAsync(
            context,
            "index definition",
            async probe =>
            {
                await probe.ExecuteAsync(ServerProbe.CopyShape(ServerProbe.Table, table.QualifiedName)).ConfigureAwait(false);
                await probe.ExecuteAsync(CreateSql(ServerProbe.Table, "", concurrently: false)).ConfigureAwait(false);
                var row = await probe.RowAsync($"SELECT c.relname::text, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = '{ServerProbe.Table}'::regclass").ConfigureAwait(false);
                return ((string)row[0]!, (string)row[1]!);
            },
            ct).ConfigureAwait(false);
        const string probePrefix = "zdt_probe_";
        var shape = new PartitionedIndexShape(
            Name,
            _spec.Unique,
            PartitionedIndexShape.TailOf(definition),
            suffix.StartsWith(probePrefix, StringComparison.Ordinal) ? suffix[probePrefix.Length..] : suffix,
            (target, quotedName, concurrently) => CreateSql(target, quotedName, concurrently));
        var build = await PartitionedIndexBuild.PlanAsync(context, tree, shape, ct).ConfigureAwait(false);
        if (!build.ContinuesUnfinishedBuild || build.Steps.Count == 0)
        {
            await TableResolver.RequireNameFreeAsync(context, _spec.Schema, Name, ct).ConfigureAwait(false);
        }

        var leaves = tree.Leaves.Count();
        return Design(
            table,
            $"{(build.ContinuesUnfinishedBuild ? "Continue building" : "Create")} the {(_spec.Unique ? "unique " : "")}index {Ident.Quote(Name)} on the partitioned table {table.QualifiedName}: ON ONLY on the parent, each of its {leaves} partition(s) concurrently, then attached ({build.Steps.Count} step(s) to run)",
            build.Steps);
    }

    public override async Task VerifyAsync(PlanningContext context, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)", context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = QualifiedIndex });
        var valid = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        if (valid is not true)
        {
            throw new ZdtException(
                ErrorIds.IndexInvalid,
                ErrorKind.InvalidOperation,
                $"CREATE INDEX CONCURRENTLY of {QualifiedIndex} returned, but the index is {(valid is null ? "not there" : "INVALID (pg_index.indisvalid is false)")}; it has been dropped. Run the command again.");
        }
    }

    public override async Task<IReadOnlyList<DdlStep>> PlanRollbackAsync(PlanningContext context, CancellationToken ct)
    {
        const string title = "Drop the index left by the failed build";
        var table = Ident.Qualify(_spec.Schema, _spec.Table);
        await using var cmd = new NpgsqlCommand("SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)", context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = QualifiedIndex });
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) switch
        {
            // Every partition's index is attached as soon as it is built, so dropping the parent removes them all.
            "I" => new[] { PartitionedIndexBuild.DropStep(QualifiedIndex, table, title) },
            string => new[] { DropStep(context, QualifiedIndex, table, title) },
            _ => Array.Empty<DdlStep>(),
        };
    }

    public override async Task<ZdtException?> ExplainFailureAsync(PlanningContext context, Exception failure, CancellationToken ct)
    {
        if (!_spec.Unique || ServerError(failure) is not { SqlState: PostgresErrorCodes.UniqueViolation } pg)
        {
            return null;
        }

        var keys = _spec.Columns.Select(Ident.Quote).Concat(_spec.Expressions.Select(e => $"({e})")).ToList();
        var table = Ident.Qualify(_spec.Schema, _spec.Table);
        var duplicates = await CountDuplicateKeysAsync(context, table, keys, _spec.Where, ct).ConfigureAwait(false);
        return DuplicatesError(table, $"unique index {Ident.Quote(Name)}", keys, duplicates, pg);
    }

    public override IReadOnlyDictionary<string, string> Describe(LedgerRow migration) => new Dictionary<string, string>
    {
        ["Table"] = Ident.Qualify(_spec.Schema, _spec.Table),
        ["Index"] = QualifiedIndex,
        ["Definition"] = CreateSql(Ident.Qualify(_spec.Schema, _spec.Table), Ident.Quote(Name), concurrently: true),
    };

    /// <summary>
    /// Counts the key values that occur more than once (rows with a NULL in the key never conflict),
    /// with the most repeated one as an example read from the data: the server's own example is in
    /// its error detail, which the client redacts.
    /// </summary>
    internal static async Task<Duplicates> CountDuplicateKeysAsync(PlanningContext context, string table, IReadOnlyList<string> keys, string? where, CancellationToken ct)
    {
        var filter = string.Join(" AND ", keys.Select(k => $"{k} IS NOT NULL").Concat(where is null ? Array.Empty<string>() : new[] { $"({where})" }));
        var group = string.Join(", ", keys);
        var sql = $"""
            WITH d AS (SELECT ROW({group})::text AS example, count(*) AS n FROM {table} WHERE {filter} GROUP BY {group} HAVING count(*) > 1)
            SELECT (SELECT count(*) FROM d), (SELECT COALESCE(sum(n), 0)::bigint FROM d), (SELECT example FROM d ORDER BY n DESC, example LIMIT 1), (SELECT max(n) FROM d)
            """;
        await using var cmd = new NpgsqlCommand(sql, context.Connection);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        return new Duplicates(reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? 0 : reader.GetInt64(3));
    }

    /// <summary>How many key values repeat, in how many rows, and the most repeated one (as a row literal) with its count.</summary>
    internal sealed record Duplicates(long Keys, long Rows, string? Example, long ExampleRows);

    internal static ZdtException DuplicatesError(string table, string what, IReadOnlyList<string> keys, Duplicates duplicates, PostgresException pg)
    {
        var example = duplicates.Example is null ? "" : $" (for example ({string.Join(", ", keys)}) = {duplicates.Example}, in {duplicates.ExampleRows:N0} rows)";
        return new(
            "DuplicateKeys",
            ErrorKind.InvalidData,
            $"The {what} cannot be built: {duplicates.Keys:N0} value(s) of ({string.Join(", ", keys)}) occur more than once in {table} ({duplicates.Rows:N0} rows){example}. Remove the duplicates first. The INVALID index the failed build left was dropped; nothing was changed.",
            pg)
        { TargetObject = duplicates.Keys };
    }

    internal static async Task<bool> IndexExistsAsync(PlanningContext context, string qualifiedIndex, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1))", context.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = qualifiedIndex });
        return (bool)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    internal static DdlStep DropStep(PlanningContext context, string qualifiedIndex, string table, string title)
        => new(
            title,
            new[] { $"DROP INDEX CONCURRENTLY IF EXISTS {qualifiedIndex}" },
            LockLevel.ShareUpdateExclusive,
            table,
            "CONCURRENTLY waits for the transactions using the index instead of locking the table, and cannot run inside a transaction block")
        {
            Transactional = false,
            LockTimeout = context.ConcurrentLockTimeout,
        };

    internal static void RequireColumns(TableInfo table, IEnumerable<string> columns)
    {
        foreach (var column in columns)
        {
            Ident.Validate(column, "column name");
            if (table.Column(column) is null)
            {
                throw new ZdtException(ErrorIds.ColumnNotFound, ErrorKind.ObjectNotFound, $"{table.QualifiedName} has no column {Ident.Quote(column)}. Names are exact (case-sensitive). Nothing was changed.")
                { TargetObject = column };
            }
        }
    }

    /// <summary>Like PostgreSQL's own choice: table_col1_col2_idx (or _key for a unique index), "expr" for expressions.</summary>
    private static string DefaultName(Spec spec)
    {
        var parts = spec.Columns.Concat(spec.Expressions.Count > 0 ? new[] { "expr" } : Array.Empty<string>()).Append(spec.Unique ? "key" : "idx");
        return Ident.Derive(spec.Table + "_", parts.ToArray());
    }

    private string DropSql() => $"DROP INDEX CONCURRENTLY IF EXISTS {QualifiedIndex}";

    private string CreateSql(string table, string quotedName, bool concurrently)
    {
        var keys = _spec.Columns.Select(Ident.Quote).Concat(_spec.Expressions.Select(e => $"({e})"));
        // Access method names are lower case (btree, gin, ...); accept GIN as the user may type it.
        var method = _spec.Method is null ? "" : $" USING {Ident.Quote(_spec.Method.ToLowerInvariant())}";
        var include = _spec.Include.Count == 0 ? "" : $" INCLUDE ({string.Join(", ", _spec.Include.Select(Ident.Quote))})";
        var where = _spec.Where is null ? "" : $" WHERE ({_spec.Where})";
        return $"CREATE {(_spec.Unique ? "UNIQUE " : "")}INDEX {(concurrently ? "CONCURRENTLY " : "")}{quotedName} ON {table}{method} ({string.Join(", ", keys)}){include}{where}";
    }
}
