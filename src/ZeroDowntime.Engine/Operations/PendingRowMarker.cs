using System.Text.Json.Serialization;
using Npgsql;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations;

/// <summary>
/// A per-row "not given its value yet" marker for a column that a backfill fills, so that NULL in
/// the column never has to mean "not yet" (the application may write NULL on purpose). At expand a
/// hidden boolean column is added without a default and then given DEFAULT true: the rows that
/// existed read NULL (pending), every row inserted from then on reads true. Both are catalog
/// changes on every PostgreSQL version (no rewrite, no scan, and no reliance on the stored
/// "missing value" of PostgreSQL 11+). Two BEFORE UPDATE triggers keep it true to the application:
/// <list type="bullet">
/// <item>"written" (<c>UPDATE OF column</c>, fires first by name): the SET list named the column,
/// so whatever the application wrote, NULL included, is its value; the row is no longer pending.</item>
/// <item>"fill" (any other UPDATE of a pending row): the row gets its value now, as it would have
/// had it all along. So a pending row never moves to a new ctid without being filled, which is
/// what lets a walk over ctid page ranges be complete.</item>
/// </list>
/// The backfill sets the column and the marker together; its UPDATE matches neither trigger's WHEN,
/// so it pays no trigger call. Contract and undo drop the triggers, the function and the marker
/// (the marker is visible to <c>SELECT *</c> while the migration is open). Owned by the operation
/// that stores it in its spec; names are fixed at expand so every later phase plans the same SQL.
/// </summary>
internal sealed record PendingRowMarker(
    string Schema,
    string Table,
    string Column,
    string MarkerColumn,
    string FunctionSchema,
    string FunctionName,
    string WrittenTrigger,
    string FillTrigger,
    string FillExpression)
{
    private const string BodyQuote = "$zdt_fill$";

    /// <summary>
    /// The names for a marker of <paramref name="column"/>. The function is named by the table's oid,
    /// which no other table shares (names built from schema and table text can collide).
    /// <paramref name="fillExpression"/> is the PL/pgSQL expression that gives a pending row its
    /// value (schema-qualified: the function runs with only pg_catalog on its search_path).
    /// </summary>
    public static PendingRowMarker For(string schema, string table, uint tableOid, string column, string functionSchema, string fillExpression)
        => new(
            schema,
            table,
            column,
            Ident.Derive("zdt_filled_", column),
            functionSchema,
            Ident.Derive("fill_", tableOid.ToString(System.Globalization.CultureInfo.InvariantCulture), column),
            // Row triggers of one event fire in name order: "written" must see the SET list first.
            Ident.Derive("zdt_a_written_", column),
            Ident.Derive("zdt_b_fill_", column),
            fillExpression);

    [JsonIgnore]
    public string QualifiedTable => Ident.Qualify(Schema, Table);

    [JsonIgnore]
    public string QualifiedFunction => Ident.Qualify(FunctionSchema, FunctionName);

    /// <summary>"alias.marker IS NULL": the row existed before the expand and has not been given its value.</summary>
    public string PendingFilter(string alias) => $"{alias}.{Ident.Quote(MarkerColumn)} IS NULL";

    /// <summary>The SET item a backfill adds to mark a row it filled.</summary>
    public string MarkFilled() => $"{Ident.Quote(MarkerColumn)} = true";

    /// <summary>Whether any of the marker's objects is still on the table (so contract or undo has something to drop).</summary>
    public bool IsPresentOn(TableInfo table)
        => table.Column(MarkerColumn) is not null || table.Triggers.Any(t => t.Name == WrittenTrigger || t.Name == FillTrigger);

    /// <summary>Refuses before anything changes when one of the marker's names is taken.</summary>
    public async Task RequireNamesFreeAsync(NpgsqlConnection connection, TableInfo table, CancellationToken ct)
    {
        string? taken = null;
        if (table.Column(MarkerColumn) is not null)
        {
            taken = $"column {Ident.Quote(MarkerColumn)}";
        }
        else if (table.Triggers.FirstOrDefault(t => t.Name == WrittenTrigger || t.Name == FillTrigger) is { } trigger)
        {
            taken = $"trigger {Ident.Quote(trigger.Name)}";
        }
        else
        {
            await using var cmd = new NpgsqlCommand("SELECT to_regprocedure($1) IS NOT NULL", connection);
            cmd.Parameters.Add(new NpgsqlParameter { Value = QualifiedFunction + "()" });
            if ((bool)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!)
            {
                taken = $"function {QualifiedFunction}()";
            }
        }

        if (taken is not null)
        {
            throw new ZdtException(
                ErrorIds.MarkerNameTaken,
                ErrorKind.ResourceExists,
                $"The backfill of {Ident.Quote(Column)} needs a {taken} on {QualifiedTable}, and that name is taken (left over from an earlier migration?). Drop it if it is not in use, then run the command again. Nothing was changed.")
            { TargetObject = taken };
        }
    }

    /// <summary>The expand's statements (after the column itself was added), for one transaction.</summary>
    public IReadOnlyList<string> CreateStatements(int serverVersion) => ColumnStatements().Concat(TriggerStatements(serverVersion)).ToList();

    /// <summary>The marker column: NULL in the rows that exist, true in every row inserted from now on (catalog changes).</summary>
    public IReadOnlyList<string> ColumnStatements()
    {
        var marker = Ident.Quote(MarkerColumn);
        return new[]
        {
            $"ALTER TABLE {QualifiedTable} ADD COLUMN {marker} boolean",
            $"ALTER TABLE {QualifiedTable} ALTER COLUMN {marker} SET DEFAULT true",
        };
    }

    /// <summary>The function and its two BEFORE UPDATE triggers (after <see cref="ColumnStatements"/>, in the same transaction or a later one).</summary>
    public IReadOnlyList<string> TriggerStatements(int serverVersion)
    {
        var marker = Ident.Quote(MarkerColumn);
        // EXECUTE FUNCTION is the spelling from PostgreSQL 11 on; before, only PROCEDURE was known.
        var execute = serverVersion >= 110000 ? "EXECUTE FUNCTION" : "EXECUTE PROCEDURE";
        return new[]
        {
            FunctionSql(),
            $"CREATE TRIGGER {Ident.Quote(WrittenTrigger)} BEFORE UPDATE OF {Ident.Quote(Column)} ON {QualifiedTable} FOR EACH ROW WHEN (OLD.{marker} IS NULL AND NEW.{marker} IS NULL) {execute} {QualifiedFunction}('written')",
            $"CREATE TRIGGER {Ident.Quote(FillTrigger)} BEFORE UPDATE ON {QualifiedTable} FOR EACH ROW WHEN (NEW.{marker} IS NULL) {execute} {QualifiedFunction}('fill')",
        };
    }

    /// <summary>Contract's and undo's statements: everything the marker added, each only if still there.</summary>
    public IReadOnlyList<string> DropStatements() => new[]
    {
        $"DROP TRIGGER IF EXISTS {Ident.Quote(WrittenTrigger)} ON {QualifiedTable}",
        $"DROP TRIGGER IF EXISTS {Ident.Quote(FillTrigger)} ON {QualifiedTable}",
        $"DROP FUNCTION IF EXISTS {QualifiedFunction}()",
        $"ALTER TABLE {QualifiedTable} DROP COLUMN IF EXISTS {Ident.Quote(MarkerColumn)}",
    };

    // The fill expression is printed schema-qualified and the body only assigns, so pg_catalog alone
    // is its search_path: nothing in the firing session's search_path can shadow what it calls.
    private string FunctionSql()
    {
        var column = Ident.Quote(Column);
        var marker = Ident.Quote(MarkerColumn);
        var body = $$"""
            CREATE FUNCTION {{QualifiedFunction}}() RETURNS trigger LANGUAGE plpgsql {{FunctionSearchPath.SetClause(Array.Empty<string>())}} AS {{BodyQuote}}
            -- ZeroDowntime: rows of {{QualifiedTable}} that existed before {{column}} was added have {{marker}} NULL until they get their value.
            BEGIN
              IF TG_ARGV[0] = 'fill' THEN
                -- An UPDATE that did not name {{column}} reached a row the backfill has not: give it its value now.
                NEW.{{column}} := ({{FillExpression}});
              END IF;
              -- 'written': the UPDATE named {{column}}; what it wrote (NULL too) is the value.
              NEW.{{marker}} := true;
              RETURN NEW;
            END
            {{BodyQuote}}
            """;
        if (body.Split(BodyQuote).Length != 3)
        {
            throw new ZdtException(ErrorIds.InvalidIdentifier, ErrorKind.InvalidArgument, $"A name or the default contains the text {BodyQuote}, which the backfill trigger's body cannot hold.");
        }

        return body;
    }
}
