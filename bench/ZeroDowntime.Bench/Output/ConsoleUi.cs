namespace ZeroDowntime.Bench.Output;

/// <summary>
/// Output for a person watching: permanent lines plus one live status line. On a terminal the
/// status line is rewritten in place a few times a second; when output goes to a file or a CI log
/// (no carriage-return tricks there), the status is printed as an ordinary line every few seconds.
/// </summary>
public sealed class ConsoleUi
{
    private readonly object _gate = new();
    private readonly TextWriter _out;
    private int _statusLength;

    public ConsoleUi(TextWriter output, bool interactive, TimeSpan plainInterval)
    {
        _out = output;
        Interactive = interactive;
        PlainInterval = plainInterval;
    }

    public bool Interactive { get; }

    public TimeSpan PlainInterval { get; }

    /// <summary>Interactive only on a real terminal that understands ANSI erase-line.</summary>
    public static ConsoleUi ForConsole(bool forcePlain, TimeSpan plainInterval)
    {
        var term = Environment.GetEnvironmentVariable("TERM");
        var interactive = !forcePlain
            && !System.Console.IsOutputRedirected
            && !string.Equals(term, "dumb", StringComparison.Ordinal)
            && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));
        return new ConsoleUi(System.Console.Out, interactive, plainInterval);
    }

    public void Line(string text = "")
    {
        lock (_gate)
        {
            ClearStatus();
            _out.WriteLine(text);
            _out.Flush();
        }
    }

    /// <summary>Shows render()'s text as the live status until the returned handle is disposed.</summary>
    public IAsyncDisposable Status(Func<string> render)
    {
        var stop = new CancellationTokenSource();
        var loop = Task.Run(() => RunStatusAsync(render, stop.Token));
        return new StatusHandle(this, stop, loop);
    }

    private async Task RunStatusAsync(Func<string> render, CancellationToken ct)
    {
        var interval = Interactive ? TimeSpan.FromMilliseconds(250) : PlainInterval;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            string text;
            try
            {
                text = render();
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException)
            {
                continue;
            }

            lock (_gate)
            {
                if (Interactive)
                {
                    var width = SafeWidth();
                    if (text.Length > width)
                    {
                        text = text[..width];
                    }

                    _out.Write("\r" + text + "\u001b[K");
                    _statusLength = text.Length;
                }
                else
                {
                    _out.WriteLine("    " + text);
                }

                _out.Flush();
            }
        }
    }

    private void ClearStatus()
    {
        if (Interactive && _statusLength > 0)
        {
            _out.Write("\r\u001b[K");
            _statusLength = 0;
        }
    }

    private static int SafeWidth()
    {
        try
        {
            return Math.Max(40, System.Console.WindowWidth - 1);
        }
        catch (IOException)
        {
            return 120;
        }
    }

    private sealed class StatusHandle(ConsoleUi ui, CancellationTokenSource stop, Task loop) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await loop.ConfigureAwait(false);
            stop.Dispose();
            lock (ui._gate)
            {
                ui.ClearStatus();
                ui._out.Flush();
            }
        }
    }
}
