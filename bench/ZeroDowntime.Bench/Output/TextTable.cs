using System.Text;

namespace ZeroDowntime.Bench.Output;

/// <summary>A table of text cells, rendered aligned for the console or as a Markdown table for the results file.</summary>
public sealed class TextTable
{
    private readonly string[] _headers;
    private readonly List<string[]> _rows = new();
    private readonly bool[] _rightAligned;

    /// <param name="headers">Column headers; a header starting with '>' is right-aligned (the '>' is not shown).</param>
    public TextTable(params string[] headers)
    {
        _rightAligned = headers.Select(h => h.StartsWith('>')).ToArray();
        _headers = headers.Select(h => h.TrimStart('>')).ToArray();
    }

    public int RowCount => _rows.Count;

    public TextTable Add(params string[] cells)
    {
        if (cells.Length != _headers.Length)
        {
            throw new ArgumentException($"Expected {_headers.Length} cells, got {cells.Length}.", nameof(cells));
        }

        _rows.Add(cells);
        return this;
    }

    public string ToConsole(string indent = "  ")
    {
        var widths = _headers.Select((h, i) => Math.Max(h.Length, _rows.Select(r => r[i].Length).DefaultIfEmpty(0).Max())).ToArray();
        var sb = new StringBuilder();
        AppendRow(sb, indent, _headers, widths);
        sb.Append(indent).AppendJoin("  ", widths.Select(w => new string('-', w))).Append('\n');
        foreach (var row in _rows)
        {
            AppendRow(sb, indent, row, widths);
        }

        return sb.ToString().TrimEnd('\n');
    }

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append("| ").AppendJoin(" | ", _headers.Select(Escape)).Append(" |\n");
        sb.Append('|').AppendJoin("|", _rightAligned.Select(r => r ? " ---: " : " --- ")).Append("|\n");
        foreach (var row in _rows)
        {
            sb.Append("| ").AppendJoin(" | ", row.Select(Escape)).Append(" |\n");
        }

        return sb.ToString();
    }

    private void AppendRow(StringBuilder sb, string indent, string[] cells, int[] widths)
    {
        sb.Append(indent);
        for (var i = 0; i < cells.Length; i++)
        {
            if (i > 0)
            {
                sb.Append("  ");
            }

            sb.Append(_rightAligned[i] ? cells[i].PadLeft(widths[i]) : cells[i].PadRight(widths[i]));
        }

        // Trailing spaces of the last column would only clutter logs.
        while (sb.Length > 0 && sb[^1] == ' ')
        {
            sb.Length--;
        }

        sb.Append('\n');
    }

    private static string Escape(string cell) => cell.Replace("|", "\\|", StringComparison.Ordinal);
}
