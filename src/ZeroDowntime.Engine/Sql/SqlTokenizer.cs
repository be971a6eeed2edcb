using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Sql;

/// <summary>What a token of SQL text is.</summary>
public enum SqlTokenKind
{
    /// <summary>A bare word: a keyword or an unquoted identifier (compare by <see cref="SqlToken.Upper"/>).</summary>
    Word,

    /// <summary>A "double-quoted" identifier (exact name in <see cref="SqlToken.Name"/>).</summary>
    QuotedIdentifier,

    /// <summary>A string literal of any form: '...', E'...', $tag$...$tag$.</summary>
    String,

    Number,

    /// <summary>Punctuation or an operator: ( ) , ; . :: = + ...</summary>
    Symbol,
}

/// <summary>One token and where it is in the text.</summary>
public sealed record SqlToken(SqlTokenKind Kind, string Text, int Start, int Depth)
{
    public int End => Start + Text.Length;

    /// <summary>A bare word upper-cased (for keyword matching); otherwise the text.</summary>
    public string Upper => Kind == SqlTokenKind.Word ? Text.ToUpperInvariant() : Text;

    /// <summary>The name an identifier token stands for: a bare word folds to lower case, a quoted one is exact.</summary>
    public string Name => Kind switch
    {
        SqlTokenKind.QuotedIdentifier => Text[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal),
        _ => Text.ToLowerInvariant(),
    };

    public bool IsIdentifier => Kind is SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier;

    public bool Is(string keyword) => Kind == SqlTokenKind.Word && string.Equals(Text, keyword, StringComparison.OrdinalIgnoreCase);

    public bool IsSymbol(string symbol) => Kind == SqlTokenKind.Symbol && Text == symbol;
}

/// <summary>
/// Splits SQL text into tokens the way PostgreSQL's lexer would, enough to tell keywords from
/// the insides of string literals, quoted identifiers and comments. It is used to check SQL the
/// user wrote (a default, a predicate, a raw DDL statement) before the server parses it: that a
/// fragment cannot end the statement it is put into (no top-level ';', balanced parentheses, no
/// comment that could swallow the rest of a line), and to recognise the dangerous DDL forms.
/// It never decides what SQL means; the server does.
/// </summary>
public sealed class SqlTokenizer
{
    private readonly string _sql;
    private readonly List<SqlToken> _tokens = new();
    private int _depth;

    private SqlTokenizer(string sql)
    {
        _sql = sql;
    }

    /// <summary>The tokens, comments and whitespace left out.</summary>
    public IReadOnlyList<SqlToken> Tokens => _tokens;

    /// <summary>True when the text had a -- or /* */ comment.</summary>
    public bool HasComments { get; private set; }

    /// <summary>False when a string, quoted identifier or comment was not closed.</summary>
    public bool IsComplete { get; private set; } = true;

    /// <summary>True when parentheses close exactly as often as they open, and never before they open.</summary>
    public bool IsBalanced { get; private set; } = true;

    public static SqlTokenizer Tokenize(string sql)
    {
        var tokenizer = new SqlTokenizer(sql);
        tokenizer.Run();
        return tokenizer;
    }

    /// <summary>
    /// Refuses a piece of SQL that could reach outside the place it is put into: an unterminated
    /// literal, a comment, a ';' or unbalanced parentheses. What the fragment means is then left
    /// to the server to check.
    /// </summary>
    public static void RequireFragment(string fragment, string what)
    {
        if (string.IsNullOrWhiteSpace(fragment))
        {
            throw new ZdtException(ErrorIds.InvalidSql, ErrorKind.InvalidArgument, $"The {what} is empty.");
        }

        var t = Tokenize(fragment);
        var problem = !t.IsComplete ? "an unterminated string, quoted identifier or comment"
            : t.HasComments ? "a comment"
            : !t.IsBalanced ? "unbalanced parentheses"
            : t.Tokens.Any(k => k.IsSymbol(";")) ? "a ';'"
            : null;
        if (problem is not null)
        {
            throw new ZdtException(
                ErrorIds.InvalidSql,
                ErrorKind.InvalidArgument,
                $"The {what} ({fragment}) contains {problem}; it must be a single SQL expression. Nothing was changed.")
            { TargetObject = fragment };
        }
    }

    /// <summary>The statements of the text, split at top-level ';' (empty statements dropped).</summary>
    public IReadOnlyList<IReadOnlyList<SqlToken>> Statements()
    {
        var statements = new List<IReadOnlyList<SqlToken>>();
        var current = new List<SqlToken>();
        foreach (var token in _tokens)
        {
            if (token.IsSymbol(";"))
            {
                if (current.Count > 0)
                {
                    statements.Add(current);
                }

                current = new List<SqlToken>();
                continue;
            }

            current.Add(token);
        }

        if (current.Count > 0)
        {
            statements.Add(current);
        }

        return statements;
    }

    private void Run()
    {
        var i = 0;
        while (i < _sql.Length)
        {
            var c = _sql[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '-' && Next(i) == '-')
            {
                HasComments = true;
                var end = _sql.IndexOf('\n', i);
                i = end < 0 ? _sql.Length : end + 1;
            }
            else if (c == '/' && Next(i) == '*')
            {
                HasComments = true;
                i = SkipBlockComment(i);
            }
            else if (c == '\'')
            {
                i = Add(SqlTokenKind.String, i, SkipString(i, backslashEscapes: false));
            }
            else if ((c is 'E' or 'e') && Next(i) == '\'')
            {
                i = Add(SqlTokenKind.String, i, SkipString(i + 1, backslashEscapes: true));
            }
            else if ((c is 'U' or 'u') && Next(i) == '&' && i + 2 < _sql.Length && _sql[i + 2] is '\'' or '"')
            {
                i = _sql[i + 2] == '\''
                    ? Add(SqlTokenKind.String, i, SkipString(i + 2, backslashEscapes: false))
                    : Add(SqlTokenKind.QuotedIdentifier, i, SkipQuotedIdentifier(i + 2));
            }
            else if (c == '"')
            {
                i = Add(SqlTokenKind.QuotedIdentifier, i, SkipQuotedIdentifier(i));
            }
            else if (c == '$' && TryDollarTag(i, out var tag))
            {
                var close = _sql.IndexOf(tag, i + tag.Length, StringComparison.Ordinal);
                if (close < 0)
                {
                    IsComplete = false;
                }

                i = Add(SqlTokenKind.String, i, close < 0 ? _sql.Length : close + tag.Length);
            }
            else if (char.IsLetter(c) || c == '_' || c > 127)
            {
                var end = i;
                while (end < _sql.Length && IsIdentifierChar(_sql[end]))
                {
                    end++;
                }

                i = Add(SqlTokenKind.Word, i, end);
            }
            else if (char.IsDigit(c) || (c == '.' && char.IsDigit(Next(i))))
            {
                var end = i;
                while (end < _sql.Length && (char.IsLetterOrDigit(_sql[end]) || _sql[end] is '.' or '_'))
                {
                    end++;
                }

                i = Add(SqlTokenKind.Number, i, end);
            }
            else if (c == ':' && Next(i) == ':')
            {
                i = Add(SqlTokenKind.Symbol, i, i + 2);
            }
            else
            {
                if (c == '(')
                {
                    i = Add(SqlTokenKind.Symbol, i, i + 1);
                    _depth++;
                    continue;
                }

                if (c == ')')
                {
                    _depth--;
                    if (_depth < 0)
                    {
                        IsBalanced = false;
                        _depth = 0;
                    }
                }

                i = Add(SqlTokenKind.Symbol, i, i + 1);
            }
        }

        if (_depth != 0)
        {
            IsBalanced = false;
        }
    }

    private int Add(SqlTokenKind kind, int start, int end)
    {
        _tokens.Add(new SqlToken(kind, _sql[start..end], start, _depth));
        return end;
    }

    private char Next(int i) => i + 1 < _sql.Length ? _sql[i + 1] : '\0';

    private static bool IsIdentifierChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '$' || c > 127;

    private int SkipBlockComment(int i)
    {
        // PostgreSQL's block comments nest.
        var level = 0;
        while (i < _sql.Length)
        {
            if (_sql[i] == '/' && Next(i) == '*')
            {
                level++;
                i += 2;
            }
            else if (_sql[i] == '*' && Next(i) == '/')
            {
                level--;
                i += 2;
                if (level == 0)
                {
                    return i;
                }
            }
            else
            {
                i++;
            }
        }

        IsComplete = false;
        return _sql.Length;
    }

    private int SkipString(int quote, bool backslashEscapes)
    {
        var i = quote + 1;
        while (i < _sql.Length)
        {
            if (backslashEscapes && _sql[i] == '\\')
            {
                i += 2;
                continue;
            }

            if (_sql[i] == '\'')
            {
                if (Next(i) == '\'')
                {
                    i += 2;
                    continue;
                }

                return i + 1;
            }

            i++;
        }

        IsComplete = false;
        return _sql.Length;
    }

    private int SkipQuotedIdentifier(int quote)
    {
        var i = quote + 1;
        while (i < _sql.Length)
        {
            if (_sql[i] == '"')
            {
                if (Next(i) == '"')
                {
                    i += 2;
                    continue;
                }

                return i + 1;
            }

            i++;
        }

        IsComplete = false;
        return _sql.Length;
    }

    private bool TryDollarTag(int i, out string tag)
    {
        // $$ or $name$ where name is an identifier that does not start with a digit ($1 is a parameter).
        var end = i + 1;
        while (end < _sql.Length && _sql[end] != '$')
        {
            if (!(char.IsLetter(_sql[end]) || _sql[end] == '_' || _sql[end] > 127 || (end > i + 1 && char.IsDigit(_sql[end]))))
            {
                tag = "";
                return false;
            }

            end++;
        }

        if (end >= _sql.Length)
        {
            tag = "";
            return false;
        }

        tag = _sql[i..(end + 1)];
        return true;
    }
}
