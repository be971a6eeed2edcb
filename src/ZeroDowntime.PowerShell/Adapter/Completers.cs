using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Connections;

namespace ZeroDowntime.PowerShell.Adapter;

/// <summary>
/// Completes names from the live database, as DBAs know it from dbatools: the connection comes
/// from the command's bound -ConnectionString (else the PG* environment), a completion gets at
/// most <see cref="Budget"/>, and any failure (no server, no password, no ledger) completes
/// nothing rather than printing an error at the prompt.
/// </summary>
public abstract class DatabaseNameCompleter : IArgumentCompleter
{
    /// <summary>A prompt waits for this at most; the connect is cut short with it.</summary>
    public static readonly TimeSpan Budget = TimeSpan.FromSeconds(3);

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var prefix = (wordToComplete ?? "").Trim('\'', '"');
        try
        {
            using var timeout = new CancellationTokenSource(Budget);
            var target = ConnectionTarget.Resolve(Bound(fakeBoundParameters, "ConnectionString"), null, null, Environment.GetEnvironmentVariable);
            var engine = new MigrationEngine(target, new EngineOptions { LedgerSchema = Bound(fakeBoundParameters, "LedgerSchema") ?? "zdt" });
            var found = Task.Run(() => FindAsync(engine, prefix, fakeBoundParameters, timeout.Token), timeout.Token).GetAwaiter().GetResult();
            return found.Select(c => new CompletionResult(Quote(c.Text), c.Text, CompletionResultType.ParameterValue, c.ToolTip)).ToList();
        }
        catch (Exception)
        {
            // Silent on failure: a prompt must never show an error for a Tab.
            return Array.Empty<CompletionResult>();
        }
    }

    /// <summary>Candidates (text and tooltip) for what was typed.</summary>
    protected abstract Task<IEnumerable<(string Text, string ToolTip)>> FindAsync(MigrationEngine engine, string prefix, IDictionary bound, CancellationToken ct);

    protected static string? Bound(IDictionary bound, string name)
        => bound.Contains(name) && bound[name] is { } value && (value is PSObject wrapped ? wrapped.BaseObject : value) is string text && text.Length > 0 ? text : null;

    protected static async Task<IEnumerable<(string, string)>> NamesAsync(MigrationEngine engine, NameCompletionRequest request, CancellationToken ct)
        => (await engine.CompleteNamesAsync(request, ct).ConfigureAwait(false)).Select(n => (n, n));

    // A name that is not a plain word (a space, a quote, upper case is fine) goes in single quotes.
    private static string Quote(string name)
        => name.All(c => char.IsLetterOrDigit(c) || c is '_' or '.') ? name : "'" + name.Replace("'", "''", StringComparison.Ordinal) + "'";
}

/// <summary>Tables of -Schema (public when not given).</summary>
public sealed class TableNameCompleter : DatabaseNameCompleter
{
    protected override Task<IEnumerable<(string Text, string ToolTip)>> FindAsync(MigrationEngine engine, string prefix, IDictionary bound, CancellationToken ct)
        => NamesAsync(engine, new NameCompletionRequest(NameKind.Table, prefix, Bound(bound, "Schema")), ct);
}

/// <summary>Columns of the bound -Table.</summary>
public sealed class ColumnNameCompleter : DatabaseNameCompleter
{
    protected override Task<IEnumerable<(string Text, string ToolTip)>> FindAsync(MigrationEngine engine, string prefix, IDictionary bound, CancellationToken ct)
        => Bound(bound, "Table") is { } table
            ? NamesAsync(engine, new NameCompletionRequest(NameKind.Column, prefix, Bound(bound, "Schema"), table), ct)
            : Task.FromResult(Enumerable.Empty<(string, string)>());
}

/// <summary>Schemas other than the system ones.</summary>
public sealed class SchemaNameCompleter : DatabaseNameCompleter
{
    protected override Task<IEnumerable<(string Text, string ToolTip)>> FindAsync(MigrationEngine engine, string prefix, IDictionary bound, CancellationToken ct)
        => NamesAsync(engine, new NameCompletionRequest(NameKind.Schema, prefix), ct);
}

/// <summary>Version schemas the module made (they carry its marker comment).</summary>
public sealed class VersionSchemaNameCompleter : DatabaseNameCompleter
{
    protected override Task<IEnumerable<(string Text, string ToolTip)>> FindAsync(MigrationEngine engine, string prefix, IDictionary bound, CancellationToken ct)
        => NamesAsync(engine, new NameCompletionRequest(NameKind.VersionSchema, prefix), ct);
}

/// <summary>Indexes of -Schema (of the bound -Table when given).</summary>
public sealed class IndexNameCompleter : DatabaseNameCompleter
{
    protected override Task<IEnumerable<(string Text, string ToolTip)>> FindAsync(MigrationEngine engine, string prefix, IDictionary bound, CancellationToken ct)
        => NamesAsync(engine, new NameCompletionRequest(NameKind.Index, prefix, Bound(bound, "Schema"), Bound(bound, "Table")), ct);
}

/// <summary>Ids of the ledger's active migrations, newest first, with what each one is as tooltip (through the ledger's trust check).</summary>
public sealed class MigrationIdCompleter : DatabaseNameCompleter
{
    protected override async Task<IEnumerable<(string Text, string ToolTip)>> FindAsync(MigrationEngine engine, string prefix, IDictionary bound, CancellationToken ct)
    {
        var migrations = await engine.GetMigrationsAsync(new MigrationQuery { ActiveOnly = true }, ct).ConfigureAwait(false);
        return migrations
            .Select(m => (Text: m.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), ToolTip: m.ToString()))
            .Where(c => c.Text.StartsWith(prefix, StringComparison.Ordinal))
            .OrderByDescending(c => c.Text.Length).ThenByDescending(c => c.Text, StringComparer.Ordinal)
            .ToList();
    }
}
