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

    /// <summary>A results file of a scenario that writes its own (through a temporary file, as the others).</summary>
    public static Task WriteTextAsync(string path, string content, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return WriteAtomicallyAsync(path, content, ct);
    }

    private static async Task WriteAtomicallyAsync(string path, string content, CancellationToken ct)
    {
        var temporary = path + ".tmp";
        await File.WriteAllTextAsync(temporary, content, ct).ConfigureAwait(false);
        File.Move(temporary, path, overwrite: true);
    }
}
