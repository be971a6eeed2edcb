using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// The trigger that keeps an old and a new column in step while both exist, following what the
/// writing statement meant (docs/architecture.md, "Sync semantics of a column copy"):
/// <list type="bullet">
/// <item>INSERT (also COPY, MERGE ... INSERT, the insert of an upsert): the name that arrives
/// holding what an omitted column gets (its default, or NULL) was not written; it takes the other
/// name's value. With a volatile default only the old column has it (<see cref="SyncDefaults.OnOldOnly"/>).</item>
/// <item>UPDATE: one trigger per name, <c>BEFORE UPDATE OF</c> that column, so the SET list says
/// which name was written even when the value did not change (SET new = NULL on a row the backfill
/// has not reached is a write, not "nothing to copy yet"). An UPDATE that names neither leaves the
/// pair alone: a row not backfilled yet stays so, and the backfill fills it.</item>
/// </list>
/// Both names written to different values in one statement is refused: no plain-DDL twin has two names.
/// One function serves all three triggers (its argument says which name an UPDATE wrote). Its name
/// carries the table's oid, so two tables can never derive the same one.
/// </summary>
internal sealed record SyncTrigger(
    string Schema,
    string Table,
    string OldColumn,
    string NewColumn,
    ColumnConversion Conversion,
    SyncDefaults Defaults,
    string? OldDefault,
    string? NewDefault,
    string FunctionSchema,
    string FunctionName,
    string OldNameTrigger,
    string NewNameTrigger,
    IReadOnlyList<string>? SearchPathSchemas = null)
{
    private const string BodyQuote = "$zdt_sync$";

    /// <summary>The function's name: the table's oid first, so it is unique whatever the names (public.x_y vs public_x.y).</summary>
    public static string DeriveFunctionName(uint tableOid, string table, string column)
        => Ident.Derive("sync_", tableOid.ToString(System.Globalization.CultureInfo.InvariantCulture), table, column);

    /// <summary>The trigger fired by INSERT and by an UPDATE of the old name; "zz" so it runs after the table's own BEFORE triggers.</summary>
    public static string DeriveOldNameTrigger(string column) => Ident.Derive("zz_zdt_sync_", column);

    public static string DeriveNewNameTrigger(string column) => Ident.Derive("zz_zdt_sync_", column, "new");

    public string QualifiedFunction => Ident.Qualify(FunctionSchema, FunctionName);

    private string TableName => Ident.Qualify(Schema, Table);

    private string Old => Ident.Quote(OldColumn);

    private string New => Ident.Quote(NewColumn);

    /// <summary>The function and its triggers.</summary>
    public IReadOnlyList<string> CreateStatements()
    {
        var statements = new List<string>
        {
            FunctionSql(),
            $"CREATE TRIGGER {Ident.Quote(OldNameTrigger)} BEFORE INSERT OR UPDATE OF {Old} ON {TableName} FOR EACH ROW EXECUTE FUNCTION {QualifiedFunction}('old')",
            $"CREATE TRIGGER {Ident.Quote(NewNameTrigger)} BEFORE UPDATE OF {New} ON {TableName} FOR EACH ROW EXECUTE FUNCTION {QualifiedFunction}('new')",
        };
        return statements;
    }

    /// <summary>Drops the triggers and the function (IF EXISTS: safe to run again after a partial run).</summary>
    public IReadOnlyList<string> DropStatements() => new[]
    {
        $"DROP TRIGGER IF EXISTS {Ident.Quote(OldNameTrigger)} ON {TableName}",
        $"DROP TRIGGER IF EXISTS {Ident.Quote(NewNameTrigger)} ON {TableName}",
        $"DROP FUNCTION IF EXISTS {QualifiedFunction}()",
    };

    /// <summary>The predicate (over a row alias) of a row whose new column is not what the old one gives: backfill's and parity's.</summary>
    public string OutOfSync(string alias) => $"{alias}.{New} IS DISTINCT FROM {Conversion.ToNew($"{alias}.{Old}")}";

    /// <summary>The SET clause that brings a row in step (the backfill's).</summary>
    public string BringInSync(string alias) => $"{New} = {Conversion.ToNew($"{alias}.{Old}")}";

    // Fixed, so the body's operators (IS DISTINCT FROM is the type's =) cannot be shadowed by a
    // schema in the search_path of whoever fires the trigger (Sql/FunctionSearchPath).
    private string SearchPathClause => SearchPathSchemas is null ? "" : FunctionSearchPath.SetClause(SearchPathSchemas) + " ";

    private string FunctionSql()
    {
        var up = Conversion.ToNewInTrigger($"NEW.{Old}");
        var down = Conversion.ToOld($"NEW.{New}");
        var both = $"RAISE EXCEPTION 'ZeroDowntime: this % sets both % and % of % to different values; while the rename is in progress write only one of them', TG_OP, {Ident.Literal(OldColumn)}, {Ident.Literal(NewColumn)}, {Ident.Literal(Table)} USING ERRCODE = 'check_violation';";
        var insert = Defaults == SyncDefaults.OnOldOnly
            ? $"""
                -- The old name's volatile default is on the old column only: a NULL new name was
                -- omitted (or, indistinguishably, written as NULL) and takes the old name's value.
                IF NEW.{New} IS NULL THEN
                  NEW.{New} := {up};
                ELSE
                  NEW.{Old} := {down};
                END IF;
            """
            : $"""
                -- A name that arrives holding what an omitted column gets was not written.
                IF NEW.{Old} IS NOT DISTINCT FROM {OldDefault ?? "NULL"} THEN
                  NEW.{Old} := {down};
                ELSIF NEW.{New} IS NOT DISTINCT FROM {NewDefault ?? "NULL"} THEN
                  NEW.{New} := {up};
                ELSIF NEW.{New} IS DISTINCT FROM {up} THEN
                  {both}
                END IF;
            """;
        var body = $"""
            CREATE FUNCTION {QualifiedFunction}() RETURNS trigger LANGUAGE plpgsql {SearchPathClause}AS {BodyQuote}
            -- ZeroDowntime: keeps {Old} and {New} of {TableName} in step while both exist.
            -- Fired by INSERT, by UPDATE OF {Old} ('old') and by UPDATE OF {New} ('new').
            BEGIN
              IF TG_OP = 'INSERT' THEN
            {insert}
              ELSIF TG_ARGV[0] = 'old' THEN
                IF NEW.{New} IS DISTINCT FROM OLD.{New} AND NEW.{New} IS DISTINCT FROM {up} THEN
                  {both}
                END IF;
                NEW.{New} := {up};
              ELSE
                IF NEW.{Old} IS DISTINCT FROM OLD.{Old} AND NEW.{Old} IS DISTINCT FROM {down} THEN
                  {both}
                END IF;
                IF NEW.{New} IS DISTINCT FROM {up} THEN
                  NEW.{Old} := {down};
                END IF;
              END IF;
              RETURN NEW;
            END
            {BodyQuote}
            """;
        if (body.Split(BodyQuote).Length != 3)
        {
            throw new ZdtException(ErrorIds.InvalidIdentifier, ErrorKind.InvalidArgument, $"A name or the column default contains the text {BodyQuote}, which the sync trigger's body cannot hold.");
        }

        return body;
    }
}
