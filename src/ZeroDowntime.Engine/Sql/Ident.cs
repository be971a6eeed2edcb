using System.Text;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Engine.Sql;

/// <summary>
/// The only place where names and literal values become SQL text. Every identifier is always
/// double-quoted (so mixed case, spaces, reserved words and embedded quotes are all exact), and
/// names longer than PostgreSQL's 63-byte limit are refused rather than silently truncated
/// (truncation could make two different names collide). Values in queries go as parameters;
/// Literal exists only for DDL, which PostgreSQL does not let us parameterise.
/// </summary>
public static class Ident
{
    /// <summary>NAMEDATALEN - 1: the longest identifier PostgreSQL keeps without truncating.</summary>
    public const int MaxBytes = 63;

    public static string Quote(string name)
    {
        Validate(name);
        return "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    public static string Qualify(string schema, string name) => Quote(schema) + "." + Quote(name);

    /// <summary>Refuses a name PostgreSQL would reject or silently change.</summary>
    public static void Validate(string name, string what = "name")
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new ZdtException(ErrorIds.InvalidIdentifier, ErrorKind.InvalidArgument, $"The {what} is empty.");
        }

        if (name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ZdtException(ErrorIds.InvalidIdentifier, ErrorKind.InvalidArgument, $"The {what} contains a NUL character, which PostgreSQL does not allow.");
        }

        if (Encoding.UTF8.GetByteCount(name) > MaxBytes)
        {
            throw new ZdtException(
                ErrorIds.IdentifierTooLong,
                ErrorKind.InvalidArgument,
                $"The {what} '{name}' is {Encoding.UTF8.GetByteCount(name)} bytes long; PostgreSQL keeps at most {MaxBytes} bytes and would silently truncate it.")
            { TargetObject = name };
        }
    }

    /// <summary>
    /// A string literal for DDL that means the same text whatever standard_conforming_strings is.
    /// </summary>
    /// <remarks>
    /// A plain '...' literal is read differently by the two settings only when it holds a
    /// backslash: with the setting off, \' ends nothing and the rest of the text becomes SQL. So a
    /// value with a backslash is written as an escape string (E'...', backslashes and quotes
    /// doubled), which both settings read the same; any other value stays a plain literal, which
    /// both settings also read the same and which keeps -WhatIf scripts readable. The module also
    /// turns the setting on for its own sessions (ConnectionTarget), but a literal must not depend
    /// on that: PL/pgSQL bodies that hold literals are compiled in the application's sessions.
    /// </remarks>
    public static string Literal(string? value)
    {
        if (value is null)
        {
            return "NULL";
        }

        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ZdtException(ErrorIds.InvalidLiteral, ErrorKind.InvalidArgument, "A text value contains a NUL character, which PostgreSQL does not allow.");
        }

        var quoted = value.Replace("'", "''", StringComparison.Ordinal);
        return value.Contains('\\', StringComparison.Ordinal)
            ? "E'" + quoted.Replace("\\", "\\\\", StringComparison.Ordinal) + "'"
            : "'" + quoted + "'";
    }

    /// <summary>A short name derived from others that still fits in 63 bytes, e.g. for triggers and functions.</summary>
    public static string Derive(string prefix, params string[] parts)
    {
        var name = prefix + string.Join("_", parts);
        if (Encoding.UTF8.GetByteCount(name) <= MaxBytes)
        {
            return name;
        }

        // Keep it readable and unique: a truncated head plus a hash of the whole.
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(name)))[..8].ToLowerInvariant();
        var head = name;
        while (Encoding.UTF8.GetByteCount(head) > MaxBytes - 9)
        {
            head = head[..^1];
        }

        return head + "_" + hash;
    }
}
