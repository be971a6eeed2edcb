using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ZeroDowntime.Bench.Reporting;

/// <summary>Writes NAME.md and NAME.json side by side (through temporary files, so an interrupted write leaves the previous results intact).</summary>
public static class ResultsFiles
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    public static async Task<(string Markdown, string Json)> WriteAsync(BenchResults results, string directory, string name, CancellationToken ct)
    {
        if (name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.StartsWith('.'))
        {
            throw new ArgumentException($"'{name}' cannot be a file name.", nameof(name));
        }

        Directory.CreateDirectory(directory);
        var markdown = Path.Combine(directory, name + ".md");
        var json = Path.Combine(directory, name + ".json");
        await WriteAtomicallyAsync(markdown, new MarkdownReport(results).Render(), ct).ConfigureAwait(false);
        await WriteAtomicallyAsync(json, JsonSerializer.Serialize(results, Json) + "\n", ct).ConfigureAwait(false);
        return (markdown, json);
    }

    /// <summary>
    /// The results of a scenario that renders its own report: NAME.md as given and NAME.json from
    /// <paramref name="result"/>, with the same JSON options as the main results (camelCase).
    /// </summary>
    public static async Task<string> WriteScenarioAsync<T>(string directory, string name, string markdown, T result, CancellationToken ct)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name + ".md");
        await WriteAtomicallyAsync(path, markdown, ct).ConfigureAwait(false);
        await WriteAtomicallyAsync(Path.Combine(directory, name + ".json"), JsonSerializer.Serialize(result, Json) + "\n", ct).ConfigureAwait(false);
        return path;
    }

    /// <summary>A scenario report's opening: its title, where and how it was measured, and the run's note (--note).</summary>
    public static StringBuilder StartReport(string title, string measured, string? note)
    {
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# {title}");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:u} {measured}");
        md.AppendLine();
        if (note is not null)
        {
            md.AppendLine(note);
            md.AppendLine();
        }

        return md;
    }

    private static async Task WriteAtomicallyAsync(string path, string content, CancellationToken ct)
    {
        var temporary = path + ".tmp";
        await File.WriteAllTextAsync(temporary, content, ct).ConfigureAwait(false);
        File.Move(temporary, path, overwrite: true);
    }
}
