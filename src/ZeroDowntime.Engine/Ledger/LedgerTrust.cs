using Npgsql;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Ledger;

/// <summary>
/// Who may own what the module reads, writes and runs: the ledger schema, the version schemas and
/// the sync trigger functions. Code that role X owns (a trigger, a default, a function) runs with
/// the privileges of whoever fires it, so the module uses an object only when its owner could act
/// as the current role anyway, or already controls the database the role connected to.
/// </summary>
/// <remarks>
/// The trusted owners are:
/// <list type="bullet">
/// <item>superusers (they can become any role);</item>
/// <item>the current role itself;</item>
/// <item>the database owner (and <c>pg_database_owner</c>, which stands for it): it already decides
/// what every session in its database starts with (<c>ALTER DATABASE ... SET search_path</c> can
/// put its own functions before pg_catalog's), so a role that connects to the database already
/// trusts it, and the module adds nothing by trusting it too.</item>
/// </list>
/// Deliberately not trusted: roles the current role is a member of (a group role's other members,
/// possibly of low privilege, can alter what the group owns), and roles that are members of the
/// current role (they can act as it, but the next user of the ledger is another role, which they
/// cannot). A ledger is created only by a role whose objects every later user trusts: a superuser
/// or the database owner (a member of the database owner creates it as the owner, with SET ROLE).
/// </remarks>
internal static class LedgerTrust
{
    // Roles whose objects the current role may use. pg_roles, not pg_authid: readable by anyone.
    const string TrustedRoles = """
        trusted AS (
            SELECT r.oid FROM pg_catalog.pg_roles r
            WHERE r.rolsuper
               OR r.rolname = CURRENT_USER
               OR r.rolname = 'pg_database_owner'
               OR r.oid = (SELECT d.datdba FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()))
        """;

    // Everything in one schema (and on its relations) that is not as the module would have made
    // it: objects owned by untrusted roles, code that runs when its tables are written (defaults,
    // constraints, index expressions, column types), triggers (we make none: only the internal
    // ones of a foreign key between two of the schema's own tables are allowed), rules, policies
    // and, when $2 (the ledger), write privileges granted to untrusted roles (a writer could
    // change a migration's spec, from which a later phase plans its DDL; CREATE on the schema is
    // no finding: what a role creates there is found by its owner). When $3 (a version
    // schema) a view may belong to its table's owner. One text per finding.
    const string FindingsSql = $"""
        WITH {TrustedRoles},
        ns AS (SELECT n.oid, n.nspname, n.nspowner, n.nspacl FROM pg_catalog.pg_namespace n WHERE n.nspname = $1),
        rel AS (
            SELECT c.oid, c.relkind, c.relowner, c.relacl,
                   pg_catalog.quote_ident(ns.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS name
            FROM pg_catalog.pg_class c JOIN ns ON c.relnamespace = ns.oid),
        runs AS (
            SELECT d.refclassid, d.refobjid FROM pg_catalog.pg_depend d
            WHERE (d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
                   AND d.objid IN (SELECT a.oid FROM pg_catalog.pg_attrdef a WHERE a.adrelid IN (SELECT oid FROM rel)))
               OR (d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
                   AND d.objid IN (SELECT k.oid FROM pg_catalog.pg_constraint k WHERE k.conrelid IN (SELECT oid FROM rel)))
               OR (d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid IN (SELECT oid FROM rel))),
        owned (what, owner) AS (
            SELECT 'schema ' || pg_catalog.quote_ident(ns.nspname), ns.nspowner FROM ns
            UNION ALL
            -- (an index, and a table's row type, always have the table's owner: the table says it)
            SELECT CASE rel.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'S' THEN 'sequence '
                                    WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' ELSE 'relation ' END || rel.name, rel.relowner
            FROM rel WHERE rel.relkind NOT IN ('i', 'I')
            -- In a version schema a view belongs to the owner of its table, by design: that role
            -- already controls the table the view presents.
            AND NOT ($3 AND rel.relkind = 'v' AND rel.relowner IN (
                SELECT b.relowner FROM pg_catalog.pg_rewrite w
                JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = w.oid
                                           AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                JOIN pg_catalog.pg_class b ON b.oid = d.refobjid AND b.relkind IN ('r', 'p')
                WHERE w.ev_class = rel.oid))
            UNION ALL
            SELECT 'function ' || p.oid::pg_catalog.regprocedure::text, p.proowner FROM pg_catalog.pg_proc p JOIN ns ON p.pronamespace = ns.oid
            -- A trigger function (a sync function) runs only when its triggers fire. One whose
            -- owner can act as the owner of every table it is a trigger on gives that owner nothing
            -- it does not have already: it could put any trigger on those tables.
            WHERE NOT (p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype
                       AND EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgfoid = p.oid)
                       AND NOT EXISTS (
                           SELECT FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
                           WHERE t.tgfoid = p.oid AND NOT pg_catalog.pg_has_role(p.proowner, c.relowner, 'USAGE')))
            UNION ALL
            SELECT 'type ' || t.oid::pg_catalog.regtype::text, t.typowner FROM pg_catalog.pg_type t JOIN ns ON t.typnamespace = ns.oid
            WHERE t.typrelid = 0 AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e WHERE e.oid = t.typelem AND e.typrelid <> 0)
            UNION ALL
            SELECT 'operator ' || o.oid::pg_catalog.regoperator::text, o.oprowner FROM pg_catalog.pg_operator o JOIN ns ON o.oprnamespace = ns.oid
            UNION ALL
            SELECT 'collation ' || c.collname, c.collowner FROM pg_catalog.pg_collation c JOIN ns ON c.collnamespace = ns.oid
            UNION ALL
            SELECT 'conversion ' || c.conname, c.conowner FROM pg_catalog.pg_conversion c JOIN ns ON c.connamespace = ns.oid
            UNION ALL
            SELECT 'operator class ' || c.opcname, c.opcowner FROM pg_catalog.pg_opclass c JOIN ns ON c.opcnamespace = ns.oid
            UNION ALL
            SELECT 'operator family ' || f.opfname, f.opfowner FROM pg_catalog.pg_opfamily f JOIN ns ON f.opfnamespace = ns.oid
            UNION ALL
            SELECT 'text search configuration ' || c.cfgname, c.cfgowner FROM pg_catalog.pg_ts_config c JOIN ns ON c.cfgnamespace = ns.oid
            UNION ALL
            SELECT 'text search dictionary ' || d.dictname, d.dictowner FROM pg_catalog.pg_ts_dict d JOIN ns ON d.dictnamespace = ns.oid
            UNION ALL
            SELECT 'statistics object ' || s.stxname, s.stxowner FROM pg_catalog.pg_statistic_ext s JOIN ns ON s.stxnamespace = ns.oid
            UNION ALL
            SELECT 'function ' || p.oid::pg_catalog.regprocedure::text || ' (used by a default, constraint or index there)', p.proowner
            FROM runs JOIN pg_catalog.pg_proc p ON runs.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND runs.refobjid = p.oid
            UNION ALL
            SELECT 'function ' || o.oprcode::pg_catalog.regprocedure::text || ' (operator ' || o.oid::pg_catalog.regoperator::text || ', used there)', p.proowner
            FROM runs JOIN pg_catalog.pg_operator o ON runs.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass AND runs.refobjid = o.oid
                      JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
            UNION ALL
            SELECT 'type ' || t.oid::pg_catalog.regtype::text || ' of column ' || rel.name || '.' || pg_catalog.quote_ident(a.attname), t.typowner
            FROM pg_catalog.pg_attribute a JOIN rel ON a.attrelid = rel.oid JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
            WHERE a.attnum > 0 AND NOT a.attisdropped),
        grants (what, grantee) AS (
            SELECT x.privilege_type || ' on ' || rel.name, x.grantee
            FROM rel, LATERAL pg_catalog.aclexplode(rel.relacl) x
            WHERE x.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES')
            UNION ALL
            SELECT x.privilege_type || ' on column ' || rel.name || '.' || pg_catalog.quote_ident(a.attname), x.grantee
            FROM pg_catalog.pg_attribute a JOIN rel ON a.attrelid = rel.oid, LATERAL pg_catalog.aclexplode(a.attacl) x
            WHERE x.privilege_type IN ('INSERT', 'UPDATE', 'REFERENCES'))
        -- What can run code first (a message lists only the first few), then owners, then grants.
        SELECT 1 AS rank, 'trigger ' || pg_catalog.quote_ident(t.tgname) || ' on ' || rel.name || ' runs ' || t.tgfoid::pg_catalog.regprocedure::text
        FROM pg_catalog.pg_trigger t JOIN rel ON t.tgrelid = rel.oid
        WHERE NOT (t.tgisinternal AND EXISTS (
            SELECT 1 FROM pg_catalog.pg_constraint k
            WHERE k.oid = t.tgconstraint AND k.conrelid IN (SELECT oid FROM rel) AND k.confrelid IN (SELECT oid FROM rel)))
        UNION ALL
        SELECT 1, 'rule ' || pg_catalog.quote_ident(w.rulename) || ' on ' || rel.name
        FROM pg_catalog.pg_rewrite w JOIN rel ON w.ev_class = rel.oid WHERE w.rulename <> '_RETURN'
        UNION ALL
        SELECT 1, 'policy ' || pg_catalog.quote_ident(p.polname) || ' on ' || rel.name
        FROM pg_catalog.pg_policy p JOIN rel ON p.polrelid = rel.oid
        UNION ALL
        SELECT 2, what || ' is owned by ' || owner::pg_catalog.regrole::text FROM owned
        WHERE owner NOT IN (SELECT oid FROM trusted)
        UNION ALL
        SELECT 3, what || ' is granted to ' || CASE grantee WHEN 0 THEN 'PUBLIC' ELSE grantee::pg_catalog.regrole::text END
        FROM grants WHERE $2 AND grantee NOT IN (SELECT oid FROM trusted)
        ORDER BY 1, 2
        """;

    const string RolesSql = """
        SELECT CURRENT_USER::text, r.rolsuper, d.datdba = r.oid, pg_catalog.pg_has_role(d.datdba, $1), o.rolname::text
        FROM pg_catalog.pg_roles r, pg_catalog.pg_database d JOIN pg_catalog.pg_roles o ON o.oid = d.datdba
        WHERE r.rolname = CURRENT_USER AND d.datname = pg_catalog.current_database()
        """;

    /// <summary>At most this many findings are listed in an error; the count says how many there were.</summary>
    const int ListedFindings = 10;

    /// <summary>What is not trusted in a schema (empty when all is well), one sentence fragment each.</summary>
    public static async Task<IReadOnlyList<string>> FindUntrustedAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, string schema, TrustedSchemaKind kind, CancellationToken ct)
    {
        // A read of the catalog that takes tens of milliseconds: a role's or database's short
        // statement_timeout (meant to guard the application) must not make every command fail here.
        // One batch is one implicit transaction (a single Sync), so the local setting covers the
        // query and ends with it; inside the caller's transaction it ends with that.
        await using var batch = new NpgsqlBatch(connection, tx)
        {
            BatchCommands = { new NpgsqlBatchCommand("SELECT pg_catalog.set_config('statement_timeout', '0', true)") },
        };
        var query = new NpgsqlBatchCommand(FindingsSql);
        query.Parameters.Add(new NpgsqlParameter { Value = schema });
        query.Parameters.Add(new NpgsqlParameter { Value = kind == TrustedSchemaKind.Ledger });
        query.Parameters.Add(new NpgsqlParameter { Value = kind == TrustedSchemaKind.VersionSchema });
        batch.BatchCommands.Add(query);
        var findings = new List<string>();
        await using var reader = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.NextResultAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            findings.Add(reader.GetString(1));
        }

        return findings;
    }

    /// <summary>Refuses to use the ledger schema when anything in or on it is not trusted (<see cref="ErrorIds.LedgerNotTrusted"/>).</summary>
    public static async Task RequireTrustedLedgerAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, string schema, CancellationToken ct)
    {
        var findings = await FindUntrustedAsync(connection, tx, schema, TrustedSchemaKind.Ledger, ct).ConfigureAwait(false);
        if (findings.Count == 0)
        {
            return;
        }

        var roles = await ReadRolesAsync(connection, tx, ct).ConfigureAwait(false);
        throw new ZdtException(
            ErrorIds.LedgerNotTrusted,
            ErrorKind.PermissionDenied,
            $"ZeroDowntime will not use the ledger schema {Ident.Quote(schema)} of database {Ident.Quote(connection.Database)}: {Describe(findings)}. "
            + $"The ledger and everything in it must be owned by a superuser, the database owner ({Ident.Quote(roles.DatabaseOwner)}) or you ({Ident.Quote(roles.CurrentUser)}), no trigger, rule or policy may be on its tables, "
            + "and only those roles may write to it: anything else could run code as you or change the migration records later phases plan their SQL from. "
            + "Have a superuser inspect these objects and drop them or give them to the database owner (ALTER ... OWNER TO, REVOKE), or use another -LedgerSchema. Nothing was changed.")
        { TargetObject = schema };
    }

    /// <summary>
    /// Refuses to use a version schema when anything in it is not trusted
    /// (<see cref="ErrorIds.UntrustedObject"/>). Its views carry the tables' grants, and its
    /// tables' owners may create in it, so privileges are not part of this check.
    /// </summary>
    public static async Task RequireTrustedVersionSchemaAsync(NpgsqlConnection connection, string schema, CancellationToken ct)
    {
        var findings = await FindUntrustedAsync(connection, null, schema, TrustedSchemaKind.VersionSchema, ct).ConfigureAwait(false);
        if (findings.Count > 0)
        {
            throw UntrustedError($"the version schema {Ident.Quote(schema)}", Describe(findings));
        }
    }

    /// <summary>
    /// Makes sure the role about to create the ledger is one whose objects every later user
    /// trusts, and returns the statement that makes the creating transaction act as that role
    /// (SET LOCAL ROLE to the database owner for a member of it), or null when no change is needed.
    /// </summary>
    public static async Task<string?> PrepareCreatorAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string schema, CancellationToken ct)
    {
        var roles = await ReadRolesAsync(connection, tx, ct).ConfigureAwait(false);
        if (roles.IsSuperuser || roles.IsDatabaseOwner)
        {
            return null;
        }

        if (roles.CanBecomeDatabaseOwner)
        {
            return $"SET LOCAL ROLE {Ident.Quote(roles.DatabaseOwner)}";
        }

        throw new ZdtException(
            ErrorIds.LedgerCreationRefused,
            ErrorKind.PermissionDenied,
            $"The ledger schema {Ident.Quote(schema)} does not exist in database {Ident.Quote(connection.Database)}, and {Ident.Quote(roles.CurrentUser)} may not create it: "
            + $"every user of ZeroDowntime in a database runs code from the ledger, so it is created only by a superuser or the database owner ({Ident.Quote(roles.DatabaseOwner)}) or a member of it. "
            + "Have one of them run the first ZeroDowntime command in this database (the ledger is created then) and grant you what you need, or connect as one. Nothing was changed.")
        { TargetObject = schema };
    }

    static ZdtException UntrustedError(string what, string findings) => new(
        ErrorIds.UntrustedObject,
        ErrorKind.PermissionDenied,
        $"ZeroDowntime will not use {what}: {findings}. Objects the module made are used only while they are owned by a superuser, the database owner or you (a view: or its table's owner): "
        + "anything else could run code as you. Have a superuser inspect it and drop it or give it to the database owner (ALTER ... OWNER TO). Nothing was changed.")
    { TargetObject = what };

    static string Describe(IReadOnlyList<string> findings)
        => string.Join("; ", findings.Take(ListedFindings))
           + (findings.Count > ListedFindings ? $"; and {findings.Count - ListedFindings} more" : "");

    static async Task<Roles> ReadRolesAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(RolesSql, connection, tx);
        // SET ROLE needs the SET option of the membership from PostgreSQL 16 on; before, any membership.
        cmd.Parameters.Add(new NpgsqlParameter { Value = connection.PostgreSqlVersion.Major >= 16 ? "SET" : "MEMBER" });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        return new Roles(reader.GetString(0), reader.GetBoolean(1), reader.GetBoolean(2), reader.GetBoolean(3), reader.GetString(4));
    }

    /// <summary>The current role and the database owner, as names (unquoted).</summary>
    sealed record Roles(string CurrentUser, bool IsSuperuser, bool IsDatabaseOwner, bool CanBecomeDatabaseOwner, string DatabaseOwner);
}

/// <summary>Which kind of schema the module is about to use, for <see cref="LedgerTrust.FindUntrustedAsync"/>.</summary>
internal enum TrustedSchemaKind
{
    /// <summary>The ledger: also no write privilege for untrusted roles.</summary>
    Ledger,

    /// <summary>A version schema: its views may belong to their tables' owners.</summary>
    VersionSchema,
}
