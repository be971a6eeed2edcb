using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.Engine.Sql;

/// <summary>A column definition found in an ALTER TABLE ... ADD COLUMN of raw DDL, to ask the server whether it rewrites.</summary>
internal sealed record AddedColumn(string Name, string Definition);

/// <summary>What a raw DDL statement is, as far as running it lock-safely goes.</summary>
internal sealed record DdlClassification
{
    /// <summary>The statement as given, trimmed and without a trailing ';'.</summary>
    public required string Statement { get; init; }

    /// <summary>Why the statement is refused outright (not DDL, several statements), or null.</summary>
    public string? Refusal { get; init; }

    /// <summary>False for statements that cannot run inside a transaction block (CONCURRENTLY, VACUUM).</summary>
    public bool Transactional { get; init; } = true;

    /// <summary>The strongest lock the statement takes on its table, as far as can be told (ACCESS EXCLUSIVE when unsure).</summary>
    public LockLevel Lock { get; init; } = LockLevel.AccessExclusive;

    /// <summary>The name of the relation the statement changes, as written (to resolve with to_regclass), or null.</summary>
    public string? Relation { get; init; }

    /// <summary>True when <see cref="Relation"/> names an index (DROP INDEX, REINDEX INDEX) rather than its table.</summary>
    public bool RelationIsIndex { get; init; }

    /// <summary>Known dangerous forms found, each naming the safe way.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = Array.Empty<string>();

    /// <summary>Columns added by ALTER TABLE ... ADD COLUMN, for the rewrite probe.</summary>
    public IReadOnlyList<AddedColumn> AddedColumns { get; init; } = Array.Empty<AddedColumn>();

    /// <summary>The (unqualified) name of an index built by CREATE INDEX CONCURRENTLY, to drop it if the build fails.</summary>
    public string? ConcurrentIndexName { get; init; }

    /// <summary>CREATE INDEX ... IF NOT EXISTS: an existing index of that name is kept, not built.</summary>
    public bool IfNotExists { get; init; }
}

/// <summary>
/// Reads a raw DDL statement's tokens to tell how to run it (inside a transaction or not), which
/// table it changes, and whether it is one of the forms known to stall a busy table, so that
/// Invoke-SafeDdl can warn and name the safe cmdlet. It recognises; it does not validate (the
/// server parses the statement separately).
/// </summary>
internal static class DdlClassifier
{
    public const string SetNotNullWarning = "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE (unless a validated CHECK (col IS NOT NULL) exists): every query on the table waits. Use Set-ColumnNotNull, which validates a check without blocking writes first.";
    public const string CreateIndexWarning = "CREATE INDEX without CONCURRENTLY holds SHARE on the table for the whole build: every INSERT, UPDATE and DELETE waits. Use New-Index, which builds CONCURRENTLY and checks the result.";
    public const string DropIndexWarning = "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table, and queues every query behind it while it waits. Use Remove-Index (DROP INDEX CONCURRENTLY).";
    public const string ForeignKeyWarning = "ADD FOREIGN KEY without NOT VALID checks every row while holding SHARE ROW EXCLUSIVE on both tables: writes wait for the whole scan. Use Add-ForeignKey (NOT VALID, then VALIDATE).";
    public const string CheckWarning = "ADD CHECK without NOT VALID checks every row under ACCESS EXCLUSIVE: every query waits for the whole scan. Use Add-CheckConstraint (NOT VALID, then VALIDATE).";
    public const string KeyWarning = "ADD UNIQUE / PRIMARY KEY builds its index under ACCESS EXCLUSIVE: every query waits for the whole build. Use Add-UniqueConstraint or Add-PrimaryKey (index built CONCURRENTLY, then attached).";
    public const string ColumnTypeWarning = "ALTER COLUMN ... TYPE usually rewrites the table and rebuilds its indexes under ACCESS EXCLUSIVE (unless the change is binary-coercible, e.g. varchar(10) to varchar(20) or text). Add a new column with Add-Column, backfill it and switch over instead.";
    public const string TableRenameWarning = "Renaming a table breaks every client that still uses the old name. Use New-TableRename, which keeps the old name working through a view.";
    public const string ColumnRenameWarning = "Renaming a column breaks every client that still uses the old name. Use New-ColumnRename, which keeps both names working until contract.";
    public const string RewriteWarning = "This rewrites the whole table under ACCESS EXCLUSIVE: every query on it waits until it is done.";
    public const string ReindexWarning = "REINDEX without CONCURRENTLY blocks writes (and, for the index, reads using it) for the whole rebuild. Use REINDEX ... CONCURRENTLY.";
    public const string InlineReferencesWarning = "REFERENCES in ADD COLUMN validates the foreign key over the whole table while holding ACCESS EXCLUSIVE. Add the column, then Add-ForeignKey.";
    public const string InlineKeyWarning = "UNIQUE / PRIMARY KEY in ADD COLUMN builds the index under ACCESS EXCLUSIVE. Add the column, then Add-UniqueConstraint (or New-Index -Unique).";

    private static readonly HashSet<string> NotDdl = new(StringComparer.Ordinal)
    {
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "WITH", "VALUES", "TABLE", "BEGIN", "START", "COMMIT", "END",
        "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE", "EXECUTE", "DEALLOCATE", "SET", "RESET", "SHOW", "EXPLAIN", "DO",
        "CALL", "LISTEN", "NOTIFY", "UNLISTEN", "DISCARD", "FETCH", "DECLARE", "CLOSE", "MOVE",
    };

    public static DdlClassification Classify(string sql)
    {
        var tokenizer = SqlTokenizer.Tokenize(sql);
        var statements = tokenizer.Statements();
        var trimmed = sql.Trim().TrimEnd(';').TrimEnd();
        if (!tokenizer.IsComplete)
        {
            return new DdlClassification { Statement = trimmed, Refusal = "it has an unterminated string, quoted identifier or comment" };
        }

        if (statements.Count != 1)
        {
            return new DdlClassification
            {
                Statement = trimmed,
                Refusal = statements.Count == 0 ? "it is empty" : $"it has {statements.Count} statements; run them one at a time, so that each gets its own lock-safe retries",
            };
        }

        var t = statements[0];
        var statement = sql[t[0].Start..t[^1].End];
        var first = t[0].Upper;
        if (NotDdl.Contains(first))
        {
            return new DdlClassification { Statement = statement, Refusal = $"{first} is not DDL (Invoke-SafeDdl runs schema changes; data changes and session or transaction commands have no place in it)" };
        }

        var concurrently = t.Any(k => k.Depth == 0 && k.Is("CONCURRENTLY"));
        var result = new DdlClassification
        {
            Statement = statement,
            Transactional = !(concurrently && !IsRefreshMaterializedView(t)) && first != "VACUUM",
        };

        return first switch
        {
            "ALTER" when Word(t, 1, "TABLE") => AlterTable(result, t, sql),
            "CREATE" => Create(result, t, concurrently),
            "DROP" when Word(t, 1, "INDEX") => DropIndex(result, t, concurrently),
            "DROP" when Word(t, 1, "TRIGGER") || Word(t, 1, "POLICY") => result with { Relation = NameAfter(t, "ON", 2) },
            "REINDEX" => Reindex(result, t, concurrently),
            "VACUUM" => Vacuum(result, t),
            "CLUSTER" => result with { Relation = ReadName(t, SkipWords(t, 1, "VERBOSE"), out _), Warnings = new[] { RewriteWarning + " Consider pg_repack instead of CLUSTER." } },
            "ANALYZE" => result with { Lock = LockLevel.ShareUpdateExclusive, Relation = ReadName(t, SkipWords(t, 1, "VERBOSE"), out _) },
            "COMMENT" when Word(t, 1, "ON") && Word(t, 2, "TABLE") => result with { Relation = ReadName(t, 3, out _) },
            "LOCK" => result with { Relation = ReadName(t, SkipWords(t, 1, "TABLE", "ONLY"), out _) },
            "TRUNCATE" => result with { Relation = ReadName(t, SkipWords(t, 1, "TABLE", "ONLY"), out _) },
            _ => result,
        };
    }

    private static DdlClassification AlterTable(DdlClassification result, IReadOnlyList<SqlToken> t, string sql)
    {
        var i = SkipWords(t, 2, "IF", "EXISTS", "ONLY");
        var relation = ReadName(t, i, out i);
        if (i < t.Count && t[i].IsSymbol("*"))
        {
            i++;
        }

        var warnings = new List<string>();
        var added = new List<AddedColumn>();
        var strongest = LockLevel.None;
        foreach (var sub in SplitTopLevel(t, i))
        {
            var (lockLevel, warning) = AlterSubcommand(sub, sql, added);
            strongest = lockLevel > strongest ? lockLevel : strongest;
            if (warning is not null && !warnings.Contains(warning))
            {
                warnings.Add(warning);
            }
        }

        return result with
        {
            Relation = relation,
            Lock = strongest == LockLevel.None ? LockLevel.AccessExclusive : strongest,
            Warnings = warnings,
            AddedColumns = added,
        };
    }

    private static (LockLevel, string?) AlterSubcommand(IReadOnlyList<SqlToken> s, string sql, List<AddedColumn> added)
    {
        if (s.Count == 0)
        {
            return (LockLevel.AccessExclusive, null);
        }

        var notValid = HasSequence(s, "NOT", "VALID");
        switch (s[0].Upper)
        {
            case "ADD":
            {
                var j = 1;
                if (Word(s, j, "CONSTRAINT"))
                {
                    j += 2;
                }

                if (Word(s, j, "CHECK"))
                {
                    return (LockLevel.AccessExclusive, notValid ? null : CheckWarning);
                }

                if (Word(s, j, "FOREIGN"))
                {
                    return (LockLevel.ShareRowExclusive, notValid ? null : ForeignKeyWarning);
                }

                if (Word(s, j, "UNIQUE") || Word(s, j, "PRIMARY") || Word(s, j, "EXCLUDE"))
                {
                    return (LockLevel.AccessExclusive, HasSequence(s, "USING", "INDEX") ? null : KeyWarning);
                }

                j = SkipWords(s, j, "COLUMN");
                if (Word(s, j, "IF") && Word(s, j + 1, "NOT") && Word(s, j + 2, "EXISTS"))
                {
                    j += 3;
                }

                if (j < s.Count && s[j].IsIdentifier)
                {
                    added.Add(new AddedColumn(s[j].Name, sql[s[j].Start..s[^1].End]));
                }

                var inline = s.Skip(j).Where(k => k.Depth == s[0].Depth).ToList();
                if (inline.Any(k => k.Is("REFERENCES")))
                {
                    return (LockLevel.AccessExclusive, InlineReferencesWarning);
                }

                if (inline.Any(k => k.Is("UNIQUE")) || HasSequence(inline, "PRIMARY", "KEY"))
                {
                    return (LockLevel.AccessExclusive, InlineKeyWarning);
                }

                return (LockLevel.AccessExclusive, null);
            }

            case "ALTER":
            {
                var j = SkipWords(s, 1, "COLUMN") + 1;
                if (HasSequenceAt(s, j, "SET", "NOT", "NULL"))
                {
                    return (LockLevel.AccessExclusive, SetNotNullWarning);
                }

                if (Word(s, j, "TYPE") || HasSequenceAt(s, j, "SET", "DATA", "TYPE"))
                {
                    return (LockLevel.AccessExclusive, ColumnTypeWarning);
                }

                return (HasSequenceAt(s, j, "SET", "STATISTICS") ? LockLevel.ShareUpdateExclusive : LockLevel.AccessExclusive, null);
            }

            case "VALIDATE":
                return (LockLevel.ShareUpdateExclusive, null);

            case "RENAME":
                return (LockLevel.AccessExclusive, Word(s, 1, "TO") ? TableRenameWarning : Word(s, 1, "CONSTRAINT") ? null : ColumnRenameWarning);

            case "SET" when Word(s, 1, "LOGGED") || Word(s, 1, "UNLOGGED") || Word(s, 1, "TABLESPACE") || HasSequenceAt(s, 1, "ACCESS", "METHOD"):
                return (LockLevel.AccessExclusive, RewriteWarning);

            case "SET" when Word(s, 1, "STATISTICS") || s.Any(k => k.IsSymbol("(")):
                return (LockLevel.ShareUpdateExclusive, null);

            default:
                return (LockLevel.AccessExclusive, null);
        }
    }

    private static DdlClassification Create(DdlClassification result, IReadOnlyList<SqlToken> t, bool concurrently)
    {
        var i = SkipWords(t, 1, "UNIQUE");
        if (Word(t, i, "INDEX"))
        {
            i = SkipWords(t, i + 1, "CONCURRENTLY");
            var ifNotExists = false;
            if (Word(t, i, "IF") && Word(t, i + 1, "NOT") && Word(t, i + 2, "EXISTS"))
            {
                ifNotExists = true;
                i += 3;
            }

            string? name = null;
            if (!Word(t, i, "ON") && i < t.Count && t[i].IsIdentifier)
            {
                name = t[i].Name;
                i++;
            }

            var relation = Word(t, i, "ON") ? ReadName(t, SkipWords(t, i + 1, "ONLY"), out _) : null;
            return result with
            {
                Relation = relation,
                Lock = concurrently ? LockLevel.ShareUpdateExclusive : LockLevel.Share,
                Warnings = concurrently ? Array.Empty<string>() : new[] { CreateIndexWarning },
                ConcurrentIndexName = concurrently ? name : null,
                IfNotExists = ifNotExists,
            };
        }

        // CREATE [OR REPLACE] [CONSTRAINT] TRIGGER name ... ON table; CREATE POLICY name ON table.
        var kind = SkipWords(t, 1, "OR", "REPLACE", "CONSTRAINT");
        if (Word(t, kind, "TRIGGER"))
        {
            return result with { Relation = NameAfter(t, "ON", kind + 1), Lock = LockLevel.ShareRowExclusive };
        }

        return Word(t, kind, "POLICY") ? result with { Relation = NameAfter(t, "ON", kind + 1) } : result;
    }

    private static DdlClassification DropIndex(DdlClassification result, IReadOnlyList<SqlToken> t, bool concurrently)
    {
        var i = SkipWords(t, 2, "CONCURRENTLY", "IF", "EXISTS");
        return result with
        {
            Relation = ReadName(t, i, out _),
            RelationIsIndex = true,
            Lock = concurrently ? LockLevel.ShareUpdateExclusive : LockLevel.AccessExclusive,
            Warnings = concurrently ? Array.Empty<string>() : new[] { DropIndexWarning },
        };
    }

    private static DdlClassification Reindex(DdlClassification result, IReadOnlyList<SqlToken> t, bool concurrently)
    {
        var i = 1;
        if (i < t.Count && t[i].IsSymbol("("))
        {
            while (i < t.Count && !(t[i].IsSymbol(")") && t[i].Depth == 0))
            {
                i++;
            }

            i++;
        }

        var isIndex = Word(t, i, "INDEX");
        if (!isIndex && !Word(t, i, "TABLE"))
        {
            return result;
        }

        return result with
        {
            Relation = ReadName(t, SkipWords(t, i + 1, "CONCURRENTLY"), out _),
            RelationIsIndex = isIndex,
            Lock = concurrently ? LockLevel.ShareUpdateExclusive : LockLevel.AccessExclusive,
            Warnings = concurrently ? Array.Empty<string>() : new[] { ReindexWarning },
        };
    }

    private static DdlClassification Vacuum(DdlClassification result, IReadOnlyList<SqlToken> t)
    {
        var full = t.Any(k => k.Is("FULL"));
        var i = 1;
        if (i < t.Count && t[i].IsSymbol("("))
        {
            while (i < t.Count && !(t[i].IsSymbol(")") && t[i].Depth == 0))
            {
                i++;
            }

            i++;
        }

        i = SkipWords(t, i, "FULL", "FREEZE", "VERBOSE", "ANALYZE");
        return result with
        {
            Relation = ReadName(t, i, out _),
            Lock = full ? LockLevel.AccessExclusive : LockLevel.ShareUpdateExclusive,
            Warnings = full ? new[] { RewriteWarning + " Consider pg_repack instead of VACUUM FULL." } : Array.Empty<string>(),
        };
    }

    private static bool IsRefreshMaterializedView(IReadOnlyList<SqlToken> t)
        => Word(t, 0, "REFRESH");

    /// <summary>A possibly qualified name (a.b.c) starting at i, as written; null when there is none.</summary>
    private static string? ReadName(IReadOnlyList<SqlToken> t, int i, out int next)
    {
        next = i;
        if (i >= t.Count || !t[i].IsIdentifier)
        {
            return null;
        }

        var end = i;
        while (end + 2 < t.Count && t[end + 1].IsSymbol(".") && t[end + 2].IsIdentifier)
        {
            end += 2;
        }

        next = end + 1;
        return string.Concat(t.Skip(i).Take(end - i + 1).Select(k => k.Text));
    }

    private static string? NameAfter(IReadOnlyList<SqlToken> t, string keyword, int from)
    {
        for (var i = from; i < t.Count; i++)
        {
            if (t[i].Depth == 0 && t[i].Is(keyword))
            {
                return ReadName(t, SkipWords(t, i + 1, "ONLY"), out _);
            }
        }

        return null;
    }

    private static IEnumerable<IReadOnlyList<SqlToken>> SplitTopLevel(IReadOnlyList<SqlToken> t, int from)
    {
        var current = new List<SqlToken>();
        for (var i = from; i < t.Count; i++)
        {
            if (t[i].Depth == 0 && t[i].IsSymbol(","))
            {
                yield return current;
                current = new List<SqlToken>();
                continue;
            }

            current.Add(t[i]);
        }

        yield return current;
    }

    private static int SkipWords(IReadOnlyList<SqlToken> t, int i, params string[] words)
    {
        while (i < t.Count && words.Any(w => t[i].Is(w)))
        {
            i++;
        }

        return i;
    }

    private static bool Word(IReadOnlyList<SqlToken> t, int i, string word) => i < t.Count && t[i].Is(word);

    private static bool HasSequenceAt(IReadOnlyList<SqlToken> t, int i, params string[] words)
        => words.Select((w, k) => Word(t, i + k, w)).All(x => x);

    private static bool HasSequence(IReadOnlyList<SqlToken> t, params string[] words)
        => Enumerable.Range(0, t.Count).Any(i => t[i].Depth == t[0].Depth && HasSequenceAt(t, i, words));
}
