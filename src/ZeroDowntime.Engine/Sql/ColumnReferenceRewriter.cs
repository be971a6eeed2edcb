using System.Text;

namespace ZeroDowntime.Engine.Sql;

/// <summary>
/// Rewrites references to one column in SQL that PostgreSQL itself printed (pg_get_constraintdef,
/// pg_get_indexdef), to build the same constraint or index on the renamed column. A plain text
/// replace would also hit string literals, other identifiers that contain the name, function
/// names and casts; this walks the tokens instead: string and dollar-quoted literals and comments
/// are copied untouched, and an identifier is replaced only when it names the column (exactly,
/// for a quoted identifier; case-folded, for a bare one) and is not a function name (followed by
/// "("), a type name (after "::") or a qualified name's later part (after ".").
/// </summary>
public static class ColumnReferenceRewriter
{
    public static string Rename(string sql, string oldColumn, string newColumn)
    {
        var result = new StringBuilder(sql.Length + 16);
        var i = 0;
        var previousSignificant = "";
        while (i < sql.Length)
        {
            var c = sql[i];
            var start = i;
            if (c == '\'' || ((c is 'E' or 'e') && i + 1 < sql.Length && sql[i + 1] == '\'' && !IsIdentifierChar(Prev(sql, i))))
            {
                i = SkipStringLiteral(sql, c == '\'' ? i : i + 1, backslashEscapes: c != '\'');
                result.Append(sql, start, i - start);
                previousSignificant = "'";
                continue;
            }

            if (c == '$' && TryDollarTag(sql, i, out var tag))
            {
                var end = sql.IndexOf(tag, i + tag.Length, StringComparison.Ordinal);
                i = end < 0 ? sql.Length : end + tag.Length;
                result.Append(sql, start, i - start);
                previousSignificant = "'";
                continue;
            }

            if (c == '-' && i + 1 < sql.Length && sql[i + 1] == '-')
            {
                var end = sql.IndexOf('\n', i);
                i = end < 0 ? sql.Length : end;
                result.Append(sql, start, i - start);
                continue;
            }

            if (c == '"')
            {
                i = SkipQuotedIdentifier(sql, i);
                var name = sql.Substring(start + 1, i - start - 2).Replace("\"\"", "\"", StringComparison.Ordinal);
                AppendIdentifier(result, sql, start, i, name == oldColumn, previousSignificant, newColumn);
                previousSignificant = "ident";
                continue;
            }

            if (IsIdentifierStart(c))
            {
                while (i < sql.Length && IsIdentifierChar(sql[i]))
                {
                    i++;
                }

                var word = sql.Substring(start, i - start);
                AppendIdentifier(result, sql, start, i, word.ToLowerInvariant() == oldColumn, previousSignificant, newColumn);
                previousSignificant = "ident";
                continue;
            }

            result.Append(c);
            i++;
            if (!char.IsWhiteSpace(c))
            {
                previousSignificant = c == ':' && previousSignificant == ":" ? "::" : c.ToString();
            }
        }

        return result.ToString();
    }

    /// <summary>The position of <paramref name="token"/> outside quoted identifiers and string literals, or -1.</summary>
    public static int IndexOfOutsideQuotes(string sql, string token)
    {
        var inIdentifier = false;
        var inLiteral = false;
        for (var i = 0; i < sql.Length; i++)
        {
            var c = sql[i];
            if (c == '"' && !inLiteral)
            {
                inIdentifier = !inIdentifier;
            }
            else if (c == '\'' && !inIdentifier)
            {
                inLiteral = !inLiteral;
            }
            else if (!inIdentifier && !inLiteral && string.CompareOrdinal(sql, i, token, 0, token.Length) == 0)
            {
                return i;
            }
        }

        return -1;
    }

    private static void AppendIdentifier(StringBuilder result, string sql, int start, int end, bool namesColumn, string previous, string newColumn)
    {
        var isFunction = NextSignificant(sql, end) == '(';
        var isQualifiedPart = previous == ".";
        var isTypeName = previous == "::";
        if (namesColumn && !isFunction && !isQualifiedPart && !isTypeName)
        {
            result.Append(Ident.Quote(newColumn));
        }
        else
        {
            result.Append(sql, start, end - start);
        }
    }

    private static char Prev(string sql, int i) => i == 0 ? ' ' : sql[i - 1];

    private static char NextSignificant(string sql, int i)
    {
        while (i < sql.Length && char.IsWhiteSpace(sql[i]))
        {
            i++;
        }

        return i < sql.Length ? sql[i] : '\0';
    }

    private static int SkipStringLiteral(string sql, int quote, bool backslashEscapes)
    {
        var i = quote + 1;
        while (i < sql.Length)
        {
            if (backslashEscapes && sql[i] == '\\')
            {
                i += 2;
                continue;
            }

            if (sql[i] == '\'')
            {
                if (i + 1 < sql.Length && sql[i + 1] == '\'')
                {
                    i += 2;
                    continue;
                }

                return i + 1;
            }

            i++;
        }

        return sql.Length;
    }

    private static int SkipQuotedIdentifier(string sql, int quote)
    {
        var i = quote + 1;
        while (i < sql.Length)
        {
            if (sql[i] == '"')
            {
                if (i + 1 < sql.Length && sql[i + 1] == '"')
                {
                    i += 2;
                    continue;
                }

                return i + 1;
            }

            i++;
        }

        return sql.Length;
    }

    private static bool TryDollarTag(string sql, int i, out string tag)
    {
        // $$ or $name$ opens a dollar-quoted string; $1 is a parameter, not a tag.
        var j = i + 1;
        while (j < sql.Length && (char.IsLetter(sql[j]) || sql[j] == '_' || (j > i + 1 && char.IsDigit(sql[j]))))
        {
            j++;
        }

        if (j < sql.Length && sql[j] == '$')
        {
            tag = sql.Substring(i, j - i + 1);
            return true;
        }

        tag = "";
        return false;
    }

    private static bool IsIdentifierStart(char c) => char.IsLetter(c) || c == '_' || c > 127;

    private static bool IsIdentifierChar(char c) => char.IsLetterOrDigit(c) || c == '_' || c == '$' || c > 127;
}
