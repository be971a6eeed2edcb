using System.Globalization;

namespace ZeroDowntime.Bench.Cli;

/// <summary>
/// "demo|bench --name value --flag" parsed into a command and options. Deliberately tiny: the
/// bench has a handful of options and must not need a package beyond the engine's.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string?> _options;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    private CommandLine(string command, Dictionary<string, string?> options)
    {
        Command = command;
        _options = options;
    }

    public string Command { get; }

    public static CommandLine Parse(IReadOnlyList<string> args)
    {
        if (args.Count == 0 || args[0].StartsWith('-'))
        {
            throw new UsageException("Name a command: demo or bench.");
        }

        var options = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (var i = 1; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"Unexpected argument '{arg}'.");
            }

            var name = arg[2..];
            string? value = null;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = args[++i];
            }

            options[name] = value;
        }

        return new CommandLine(args[0], options);
    }

    public bool Flag(string name)
    {
        _read.Add(name);
        return _options.TryGetValue(name, out var value) && (value is null || value is "true" or "1" or "yes");
    }

    public string? String(string name)
    {
        _read.Add(name);
        return _options.TryGetValue(name, out var value) ? value ?? throw new UsageException($"--{name} needs a value.") : null;
    }

    public long Long(string name, long fallback)
    {
        var text = String(name);
        if (text is null)
        {
            return fallback;
        }

        // 10_000_000, 10,000,000, 10M and 10k are all accepted.
        var cleaned = text.Replace("_", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal);
        var multiplier = 1L;
        if (cleaned.EndsWith('k') || cleaned.EndsWith('K'))
        {
            multiplier = 1_000;
            cleaned = cleaned[..^1];
        }
        else if (cleaned.EndsWith('m') || cleaned.EndsWith('M'))
        {
            multiplier = 1_000_000;
            cleaned = cleaned[..^1];
        }

        return double.TryParse(cleaned, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0
            ? (long)(n * multiplier)
            : throw new UsageException($"--{name} needs a number, not '{text}'.");
    }

    public double Double(string name, double fallback)
    {
        var text = String(name);
        return text is null
            ? fallback
            : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0
                ? n
                : throw new UsageException($"--{name} needs a number, not '{text}'.");
    }

    /// <summary>Fails on options no command asked for (a typo must not silently run the default).</summary>
    public void RejectUnknown()
    {
        var unknown = _options.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new UsageException($"Unknown option(s) for '{Command}': {string.Join(", ", unknown.Select(u => "--" + u))}.");
        }
    }
}

/// <summary>A mistake on the command line: shown with the usage text, exit code 64.</summary>
public sealed class UsageException(string message) : Exception(message);
