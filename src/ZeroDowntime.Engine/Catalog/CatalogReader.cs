using Npgsql;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Catalog;

/// <summary>
/// Reads what the operations plan from out of the system catalogs. Every name is matched
/// exactly (as a quoted identifier would be) and passed as a parameter.
/// </summary>
internal sealed class CatalogReader
{
    private readonly NpgsqlConnection _connection;

    public CatalogReader(NpgsqlConnection connection)
    {
        _connection = connection;
    }

    private bool SinceVersion14 => _connection.PostgreSqlVersion.Major >= 14;

    /// <summary>server_version_num, e.g. 150004.</summary>
    public async Task<int> ServerVersionAsync(CancellationToken ct)
    {
        var text = await ScalarAsync<string>("SELECT current_setting('server_version_num')", ct, Array.Empty<object>()).ConfigureAwait(false);
        return int.Parse(text!, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The oid of the relation with exactly this name, or null.</summary>
    public async Task<uint?> FindRelationAsync(string schema, string name, CancellationToken ct)
    {
        const string sql = "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2";
        return await ScalarAsync<uint?>(sql, ct, schema, name).ConfigureAwait(false);
    }

    /// <summary>
    /// What already uses a name in a schema: a relation of any kind (table, view, index, sequence)
    /// or a type (every table also owns a row type of its name). Null when the name is free.
    /// </summary>
    public async Task<string?> DescribeNameUseAsync(string schema, string name, CancellationToken ct)
    {
        const string sql = """
            SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                     WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence'
                     WHEN 'i' THEN 'index' WHEN 'I' THEN 'partitioned index' WHEN 'c' THEN 'composite type' ELSE 'relation' END
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2
            UNION ALL
            SELECT 'type' FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname = $1 AND t.typname = $2 AND t.typrelid = 0
            LIMIT 1
            """;
        return await ScalarAsync<string?>(sql, ct, schema, name).ConfigureAwait(false);
    }

    /// <summary>Whether a statistics object of exactly this name exists in the schema (they have a namespace of their own).</summary>
    public async Task<bool> StatisticsNameTakenAsync(string schema, string name, CancellationToken ct)
    {
        const string sql = "SELECT EXISTS (SELECT FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE n.nspname = $1 AND s.stxname = $2)";
        return await ScalarAsync<bool>(sql, ct, schema, name).ConfigureAwait(false);
    }

    /// <summary>The identity sequence of a column (schema-qualified, quoted), or null when the column is no identity.</summary>
    public async Task<string?> IdentitySequenceAsync(uint tableOid, short column, CancellationToken ct)
    {
        const string sql = """
            SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
            FROM pg_depend d JOIN pg_class c ON c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND d.refobjsubid = $2
              AND d.deptype = 'i' AND c.relkind = 'S'
            """;
        return await ScalarAsync<string?>(sql, ct, (long)tableOid, column).ConfigureAwait(false);
    }

    /// <summary>What already uses a function name (without arguments) in a schema: its description, or null when free.</summary>
    public async Task<string?> DescribeFunctionAsync(string schema, string name, CancellationToken ct)
    {
        const string sql = "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2 AND p.pronargs = 0 LIMIT 1";
        return await ScalarAsync<string?>(sql, ct, schema, name).ConfigureAwait(false);
    }

    /// <summary>Names in the schema that differ only by case, to suggest when an exact match fails.</summary>
    public async Task<IReadOnlyList<string>> SimilarRelationNamesAsync(string schema, string name, CancellationToken ct)
    {
        const string sql = """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE lower(n.nspname) = lower($1) AND lower(c.relname) = lower($2) AND c.relkind IN ('r','p','v','m','f')
            ORDER BY 1 LIMIT 5
            """;
        var names = new List<string>();
        await using var cmd = Command(sql, schema, name);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    /// <summary>Reads a relation with its columns, constraints, indexes, triggers, dependents and grants.</summary>
    public async Task<TableInfo?> ReadTableAsync(string schema, string name, CancellationToken ct)
    {
        var oid = await FindRelationAsync(schema, name, ct).ConfigureAwait(false);
        return oid is null ? null : await ReadTableAsync(oid.Value, ct).ConfigureAwait(false);
    }

    public async Task<TableInfo?> ReadTableAsync(uint oid, CancellationToken ct)
    {
        const string sql = """
            SELECT n.nspname, c.relname, c.relkind, c.relispartition, pg_get_userbyid(c.relowner),
                   GREATEST(c.reltuples, 0)::bigint, c.relrowsecurity, c.relforcerowsecurity,
                   obj_description(c.oid, 'pg_class'), COALESCE(c.reloptions, '{}')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1
            """;
        TableInfo table;
        await using (var cmd = Command(sql, oid))
        await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            if (!await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                return null;
            }

            table = new TableInfo
            {
                Oid = oid,
                Schema = reader.GetString(0),
                Name = reader.GetString(1),
                Kind = ToKind(reader.GetChar(2)),
                IsPartition = reader.GetBoolean(3),
                Owner = reader.GetString(4),
                EstimatedRows = reader.GetInt64(5),
                RowSecurity = reader.GetBoolean(6),
                ForceRowSecurity = reader.GetBoolean(7),
                Comment = reader.IsDBNull(8) ? null : reader.GetString(8),
                Options = reader.GetFieldValue<string[]>(9),
            };
        }

        return table with
        {
            Columns = await ReadColumnsAsync(oid, ct).ConfigureAwait(false),
            Constraints = await ReadConstraintsAsync("con.conrelid = $1", oid, ct).ConfigureAwait(false),
            ReferencedBy = await ReadConstraintsAsync("con.confrelid = $1 AND con.contype = 'f'", oid, ct).ConfigureAwait(false),
            Indexes = await ReadIndexesAsync(oid, ct).ConfigureAwait(false),
            Triggers = await ReadTriggersAsync(oid, ct).ConfigureAwait(false),
            Dependents = await ReadDependentsAsync(oid, ct).ConfigureAwait(false),
            Grants = await ReadGrantsAsync(oid, ct).ConfigureAwait(false),
        };
    }

    private async Task<IReadOnlyList<ColumnInfo>> ReadColumnsAsync(uint oid, CancellationToken ct)
    {
        // attcompression exists from PostgreSQL 14 on.
        var compression = SinceVersion14 ? "a.attcompression" : "NULL::\"char\"";
        var sql = $$"""
            SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                   CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0 THEN cn.nspname END,
                   CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0 THEN co.collname END,
                   a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
                   col_description(a.attrelid, a.attnum), COALESCE(a.attstattarget::int, -1),
                   CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END,
                   CASE {{compression}} WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END,
                   COALESCE(a.attoptions, '{}')
            FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            LEFT JOIN pg_collation co ON co.oid = a.attcollation
            LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
            WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """;
        var columns = new List<ColumnInfo>();
        await using var cmd = Command(sql, oid);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            var generated = reader.IsDBNull(8) ? "" : reader.GetString(8);
            var identity = reader.IsDBNull(7) ? "" : reader.GetString(7);
            columns.Add(new ColumnInfo
            {
                Number = reader.GetInt16(0),
                Name = reader.GetString(1),
                Type = reader.GetString(2),
                Collation = reader.IsDBNull(3) ? null : Ident.Qualify(reader.GetString(3), reader.GetString(4)),
                NotNull = reader.GetBoolean(5),
                Default = reader.IsDBNull(6) || generated.Length > 0 ? null : reader.GetString(6),
                Identity = identity.Length > 0 ? identity[0] : '\0',
                Generated = generated.Length > 0 ? generated[0] : '\0',
                Comment = reader.IsDBNull(9) ? null : reader.GetString(9),
                StatisticsTarget = reader.GetInt32(10),
                Storage = reader.IsDBNull(11) ? null : reader.GetString(11),
                Compression = reader.IsDBNull(12) ? null : reader.GetString(12),
                Options = reader.GetFieldValue<string[]>(13),
            });
        }

        return columns;
    }

    private async Task<IReadOnlyList<ConstraintInfo>> ReadConstraintsAsync(string where, uint oid, CancellationToken ct)
    {
        var sql = $$"""
            SELECT con.oid, con.conname, con.contype::text, pg_get_constraintdef(con.oid), con.convalidated,
                   n.nspname, c.relname, COALESCE(con.conkey, '{}'), con.confrelid,
                   CASE WHEN con.confrelid <> 0 THEN con.confrelid::regclass::text END,
                   COALESCE(con.confkey, '{}'), ic.relname
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_class ic ON ic.oid = con.conindid AND con.contype IN ('p','u','x')
            WHERE {{where}}
            ORDER BY con.conname
            """;
        var constraints = new List<ConstraintInfo>();
        await using var cmd = Command(sql, oid);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            var referenced = reader.GetFieldValue<uint>(8);
            constraints.Add(new ConstraintInfo
            {
                Oid = reader.GetFieldValue<uint>(0),
                Name = reader.GetString(1),
                Type = ToConstraintType(reader.GetString(2)[0]),
                Definition = reader.GetString(3),
                Validated = reader.GetBoolean(4),
                TableSchema = reader.GetString(5),
                TableName = reader.GetString(6),
                Columns = reader.GetFieldValue<short[]>(7),
                ReferencedTableOid = referenced == 0 ? null : referenced,
                ReferencedTable = reader.IsDBNull(9) ? null : reader.GetString(9),
                ReferencedColumns = reader.GetFieldValue<short[]>(10),
                IndexName = reader.IsDBNull(11) ? null : reader.GetString(11),
            });
        }

        return constraints;
    }

    private async Task<IReadOnlyList<IndexInfo>> ReadIndexesAsync(uint oid, CancellationToken ct)
    {
        // pg_depend records an index's dependency on every column it uses: keys, INCLUDE columns,
        // expressions and the partial-index predicate; indkey alone misses the last two. An index
        // that backs a constraint has no such rows (it depends on its constraint, which depends on
        // the key columns), so indkey is added: without it a UNIQUE constraint's index would seem
        // to use no column at all.
        const string sql = """
            SELECT i.indexrelid, ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary, i.indisvalid,
                   COALESCE((SELECT array_agg(DISTINCT u.n ORDER BY u.n) FROM (
                               SELECT d.refobjsubid::int2 AS n FROM pg_depend d
                               WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                                 AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid > 0
                               UNION ALL
                               SELECT k FROM unnest(string_to_array(i.indkey::text, ' ')::int2[]) k WHERE k > 0) u), '{}'),
                   (SELECT con.conname FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid LIMIT 1),
                   (string_to_array(i.indkey::text, ' ')::int2[])[1:i.indnkeyatts],
                   i.indexprs IS NOT NULL, i.indpred IS NOT NULL, i.indisreplident, i.indisclustered,
                   COALESCE((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false), obj_description(i.indexrelid, 'pg_class')
            FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
            WHERE i.indrelid = $1
            ORDER BY ic.relname
            """;
        var indexes = new List<IndexInfo>();
        await using var cmd = Command(sql, oid);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            indexes.Add(new IndexInfo
            {
                Oid = reader.GetFieldValue<uint>(0),
                Name = reader.GetString(1),
                Definition = reader.GetString(2),
                IsUnique = reader.GetBoolean(3),
                IsPrimary = reader.GetBoolean(4),
                IsValid = reader.GetBoolean(5),
                Columns = reader.GetFieldValue<short[]>(6),
                ConstraintName = reader.IsDBNull(7) ? null : reader.GetString(7),
                KeyColumns = reader.GetFieldValue<short[]>(8),
                HasExpressions = reader.GetBoolean(9),
                HasPredicate = reader.GetBoolean(10),
                IsReplicaIdentity = reader.GetBoolean(11),
                IsClustered = reader.GetBoolean(12),
                NullsNotDistinct = reader.GetBoolean(13),
                Comment = reader.IsDBNull(14) ? null : reader.GetString(14),
            });
        }

        return indexes;
    }

    private async Task<IReadOnlyList<TriggerInfo>> ReadTriggersAsync(uint oid, CancellationToken ct)
    {
        const string sql = """
            SELECT t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text, pn.nspname, p.proname
            FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
            WHERE t.tgrelid = $1 AND NOT t.tgisinternal
            ORDER BY t.tgname
            """;
        var triggers = new List<TriggerInfo>();
        await using var cmd = Command(sql, oid);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            triggers.Add(new TriggerInfo(reader.GetString(0), reader.GetString(1), reader.GetString(2)[0], reader.GetString(3), reader.GetString(4)));
        }

        return triggers;
    }

    private async Task<IReadOnlyList<DependentObject>> ReadDependentsAsync(uint oid, CancellationToken ct)
    {
        // A view or rule depends on the table through its rewrite rule; refobjsubid names the column
        // (0 when the whole relation is referenced).
        const string sql = """
            SELECT n.nspname, v.relname, v.relkind, array_agg(DISTINCT d.refobjsubid::int2 ORDER BY d.refobjsubid::int2)
            FROM pg_depend d
            JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
            JOIN pg_class v ON v.oid = r.ev_class
            JOIN pg_namespace n ON n.oid = v.relnamespace
            WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1
            GROUP BY n.nspname, v.relname, v.relkind
            ORDER BY 1, 2
            """;
        var dependents = new List<DependentObject>();
        await using var cmd = Command(sql, oid);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            dependents.Add(new DependentObject(reader.GetString(0), reader.GetString(1), ToKind(reader.GetChar(2)), reader.GetFieldValue<short[]>(3)));
        }

        return dependents;
    }

    private async Task<IReadOnlyList<GrantInfo>> ReadGrantsAsync(uint oid, CancellationToken ct)
    {
        const string sql = """
            SELECT CASE WHEN g.grantee = 0 THEN NULL ELSE pg_get_userbyid(g.grantee) END, g.privilege_type, g.is_grantable, NULL::name
            FROM pg_class c, aclexplode(c.relacl) g
            WHERE c.oid = $1 AND g.grantee <> c.relowner
            UNION ALL
            SELECT CASE WHEN g.grantee = 0 THEN NULL ELSE pg_get_userbyid(g.grantee) END, g.privilege_type, g.is_grantable, a.attname
            FROM pg_attribute a, aclexplode(a.attacl) g
            WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
            ORDER BY 4 NULLS FIRST, 1 NULLS FIRST, 2
            """;
        var grants = new List<GrantInfo>();
        await using var cmd = Command(sql, oid);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            grants.Add(new GrantInfo(
                reader.IsDBNull(0) ? null : reader.GetString(0),
                reader.GetString(1),
                reader.GetBoolean(2),
                reader.IsDBNull(3) ? null : reader.GetString(3)));
        }

        return grants;
    }

    /// <summary>
    /// Every object that depends on one column (pg_depend), classified: indexes and sequences by
    /// relkind, constraints and defaults as "own" (of this table/column) or "other". Operations that
    /// drop or replace the column use it to refuse what they cannot carry.
    /// </summary>
    public async Task<IReadOnlyList<ColumnDependent>> ColumnDependentsAsync(uint tableOid, short attnum, CancellationToken ct)
    {
        const string sql = """
            SELECT CASE WHEN gen.attnum IS NOT NULL THEN 'pg_attrdef' ELSE d.classid::regclass::text END,
                   d.objid, pg_describe_object(d.classid, d.objid, d.objsubid),
                   CASE WHEN gen.attnum IS NOT NULL THEN 'other' ELSE
                   CASE d.classid
                     WHEN 'pg_class'::regclass THEN (SELECT c.relkind::text FROM pg_class c WHERE c.oid = d.objid)
                     WHEN 'pg_constraint'::regclass THEN (SELECT CASE WHEN con.conrelid = $1 THEN 'own' ELSE 'other' END FROM pg_constraint con WHERE con.oid = d.objid)
                     WHEN 'pg_attrdef'::regclass THEN (SELECT CASE WHEN ad.adrelid = $1 AND ad.adnum = $2 THEN 'own' ELSE 'other' END FROM pg_attrdef ad WHERE ad.oid = d.objid)
                   END END,
                   (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE d.classid = 'pg_class'::regclass AND c.oid = d.objid),
                   (SELECT c.relname FROM pg_class c WHERE d.classid = 'pg_class'::regclass AND c.oid = d.objid)
            FROM pg_depend d
            -- Before PostgreSQL 14 a generated column depends on the column it is computed from
            -- directly (later through its pg_attrdef expression): report it as the same kind.
            LEFT JOIN pg_attribute gen ON d.classid = 'pg_class'::regclass AND d.objsubid > 0
                 AND gen.attrelid = d.objid AND gen.attnum = d.objsubid AND gen.attgenerated <> ''
            WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND d.refobjsubid = $2 AND d.deptype IN ('n', 'a')
            ORDER BY 1, 3
            """;
        var dependents = new List<ColumnDependent>();
        await using var cmd = Command(sql, tableOid, attnum);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            dependents.Add(new ColumnDependent(
                reader.GetString(0),
                reader.GetFieldValue<uint>(1),
                reader.GetString(2),
                reader.IsDBNull(3) ? "" : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetString(5)));
        }

        return dependents;
    }

    /// <summary>
    /// The extended statistics objects on a table (PostgreSQL 14+: pg_get_statisticsobjdef_columns),
    /// with every column each one uses, plain or in an expression.
    /// </summary>
    public async Task<IReadOnlyList<StatisticsInfo>> ReadStatisticsAsync(uint tableOid, CancellationToken ct)
    {
        // Before PostgreSQL 14 statistics objects had plain columns only, and no function printing them.
        var targets = SinceVersion14
            ? "pg_get_statisticsobjdef_columns(s.oid)"
            : "(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = s.stxrelid AND a.attnum = ANY (s.stxkeys::int2[]))";
        var sql = $$"""
            SELECT s.oid, n.nspname, s.stxname,
                   COALESCE((SELECT array_agg(DISTINCT d.refobjsubid::int2 ORDER BY d.refobjsubid::int2) FROM pg_depend d
                             WHERE d.classid = 'pg_statistic_ext'::regclass AND d.objid = s.oid
                               AND d.refclassid = 'pg_class'::regclass AND d.refobjid = s.stxrelid AND d.refobjsubid > 0), '{}'),
                   ARRAY(SELECT CASE k WHEN 'd' THEN 'ndistinct' WHEN 'f' THEN 'dependencies' WHEN 'm' THEN 'mcv' END
                         FROM unnest(s.stxkind) k WHERE k <> 'e'),
                   {{targets}}, COALESCE((to_jsonb(s) ->> 'stxstattarget')::int, -1), obj_description(s.oid, 'pg_statistic_ext')
            FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
            WHERE s.stxrelid = $1
            ORDER BY n.nspname, s.stxname
            """;
        var statistics = new List<StatisticsInfo>();
        await using var cmd = Command(sql, tableOid);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            statistics.Add(new StatisticsInfo
            {
                Oid = reader.GetFieldValue<uint>(0),
                Schema = reader.GetString(1),
                Name = reader.GetString(2),
                Columns = reader.GetFieldValue<short[]>(3),
                Kinds = reader.GetFieldValue<string[]>(4),
                Targets = reader.GetString(5),
                StatisticsTarget = reader.GetInt32(6),
                Comment = reader.IsDBNull(7) ? null : reader.GetString(7),
            });
        }

        return statistics;
    }

    /// <summary>
    /// A column's default printed with every name schema-qualified (search_path = pg_catalog), so it
    /// means the same thing inside a trigger function whatever the caller's search_path is.
    /// </summary>
    public async Task<string?> QualifiedDefaultAsync(uint tableOid, short attnum, CancellationToken ct)
    {
        await using var tx = await _connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var set = new NpgsqlCommand("SET LOCAL search_path = pg_catalog", _connection, tx))
        {
            await set.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await using var cmd = Command("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = $1 AND adnum = $2", tableOid, attnum);
        cmd.Transaction = tx;
        var value = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        await tx.RollbackAsync(ct).ConfigureAwait(false);
        return value as string;
    }

    private NpgsqlCommand Command(string sql, params object[] parameters)
    {
        var cmd = new NpgsqlCommand(sql, _connection);
        foreach (var p in parameters)
        {
            // Npgsql maps uint to nothing by default; our uints are always oids.
            cmd.Parameters.Add(p is uint ? new NpgsqlParameter { Value = p, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Oid } : new NpgsqlParameter { Value = p });
        }

        return cmd;
    }

    private async Task<T?> ScalarAsync<T>(string sql, CancellationToken ct, params object[] parameters)
    {
        await using var cmd = Command(sql, parameters);
        var value = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return value is null or DBNull ? default : (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    internal static RelationKind ToKind(char relkind) => relkind switch
    {
        'r' => RelationKind.Table,
        'p' => RelationKind.PartitionedTable,
        'v' => RelationKind.View,
        'm' => RelationKind.MaterializedView,
        'f' => RelationKind.ForeignTable,
        'S' => RelationKind.Sequence,
        'i' or 'I' => RelationKind.Index,
        'c' => RelationKind.CompositeType,
        _ => RelationKind.Other,
    };

    private static ConstraintType ToConstraintType(char contype) => contype switch
    {
        'p' => ConstraintType.PrimaryKey,
        'u' => ConstraintType.Unique,
        'f' => ConstraintType.ForeignKey,
        'c' => ConstraintType.Check,
        'x' => ConstraintType.Exclusion,
        'n' => ConstraintType.NotNull,
        't' => ConstraintType.Trigger,
        _ => ConstraintType.Other,
    };
}
