using System.Text.RegularExpressions;

namespace ZeroDowntime.Engine.Connections;

/// <summary>
/// Masks secrets (passwords) in text that is about to be shown to a user or written to a log.
/// </summary>
internal sealed partial class SecretScrubber
{
    internal const string Mask = "********";

    // Longest first, so that a secret which contains another one is masked as a whole.
    readonly string[] _forms;

    public SecretScrubber(params string?[] secrets)
    {
        _forms = secrets
            .Where(secret => !string.IsNullOrEmpty(secret))
            .SelectMany(secret => FormsOf(secret!))
            .Distinct(StringComparer.Ordinal)
            .OrderByDescending(form => form.Length)
            .ToArray();
    }

    /// <summary>Replaces every known form of every secret with <see cref="Mask"/>.</summary>
    /// <remarks>
    /// Even very short passwords are masked: an unreadable message is better than a leaked password.
    /// </remarks>
    public string Scrub(string text)
    {
        foreach (var form in _forms)
        {
            text = text.Replace(form, Mask, StringComparison.Ordinal);
        }
        return text;
    }

    // A password can reach a message as typed, or percent-encoded as it was written in a
    // postgresql:// URI (people write both %2F and %2f).
    static IEnumerable<string> FormsOf(string secret)
    {
        yield return secret;
        var encoded = Uri.EscapeDataString(secret);
        yield return encoded;
        yield return PercentEscape().Replace(encoded, match => match.Value.ToLowerInvariant());
    }

    [GeneratedRegex("%[0-9A-F]{2}")]
    private static partial Regex PercentEscape();
}
