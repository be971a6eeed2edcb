using System.Text;

namespace ZeroDowntime.Engine.Sql;

/// <summary>
/// Rewrites references to one column in SQL that PostgreSQL itself printed (pg_get_constraintdef,
/// pg_get_indexdef), to build the same constraint or index on the renamed column. A plain text
/// replace would also hit string literals, other identifiers that contain the name, function
/// names and casts; this works on <see cref="SqlTokenizer"/>'s tokens instead: literals and
/// comments are never touched, and an identifier is replaced only when it names the column
/// (exactly, for a quoted identifier; case-folded, for a bare one) and is not a function name
/// (followed by "("), a type name (after "::" or AS) or a qualified name's later part (after ".").
/// </summary>
public static class ColumnReferenceRewriter
{
    public static string Rename(string sql, string oldColumn, string newColumn)
    {
        var tokens = SqlTokenizer.Tokenize(sql).Tokens;
        var result = new StringBuilder(sql.Length + 16);
        var copied = 0;
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (!token.IsIdentifier || token.Name != oldColumn)
            {
                continue;
            }

            var previous = i > 0 ? tokens[i - 1] : null;
            var isFunction = i + 1 < tokens.Count && tokens[i + 1].IsSymbol("(");
            var isQualifiedPart = previous?.IsSymbol(".") == true;
            var isTypeName = previous is not null && (previous.IsSymbol("::") || previous.Is("AS"));
            if (isFunction || isQualifiedPart || isTypeName)
            {
                continue;
            }

            result.Append(sql, copied, token.Start - copied).Append(Ident.Quote(newColumn));
            copied = token.End;
        }

        return result.Append(sql, copied, sql.Length - copied).ToString();
    }

    /// <summary>Where the first top-level (outside parentheses) keyword <paramref name="keyword"/> starts, or -1.</summary>
    public static int IndexOfKeyword(string sql, string keyword)
        => SqlTokenizer.Tokenize(sql).Tokens.FirstOrDefault(t => t.Depth == 0 && t.Is(keyword))?.Start ?? -1;
}
