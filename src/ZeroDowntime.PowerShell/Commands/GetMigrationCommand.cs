using System.Globalization;
using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.PowerShell.Adapter;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>Reads migrations from the ledger. Read-only, so no ShouldProcess.</summary>
[Cmdlet(VerbsCommon.Get, "Migration", HelpUri = HelpLinks.Base + "get-migration")]
[OutputType(typeof(Migration))]
public sealed class GetMigrationCommand : ZdtCmdletBase
{
    public const string NotFoundErrorId = ErrorIds.MigrationNotFound;

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("MigrationId")]
    [ValidateRange(1L, long.MaxValue)]
    [ArgumentCompleter(typeof(MigrationIdCompleter))]
    public long Id { get; set; }

    /// <summary>Matches the table's original or new name.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TableNameCompleter))]
    public string? Table { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(SchemaNameCompleter))]
    public string? Schema { get; set; }

    /// <summary>The label given when the migration was started (-Tag of New-ColumnRename, New-Index, ...), exact.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Tag { get; set; }

    /// <summary>Matches the column's original or new name, exact.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ColumnNameCompleter))]
    public string? Column { get; set; }

    /// <summary>
    /// The operations as the ledger names them. Strings, not an engine enum: a value type from the
    /// engine would have to load before the module's assembly resolver runs (see ModuleSurfaceTests).
    /// </summary>
    [Parameter]
    [ValidateSet("RenameTable", "RenameColumn", "RenameColumnView", "ChangeColumnType", "AddColumn", "SetColumnNotNull", "CreateIndex", "DropIndex", "AddConstraint", "SafeDdl")]
    public string[]? Operation { get; set; }

    /// <summary>The phases (MigrationPhase names), as strings for the reason given at -Operation.</summary>
    [Parameter]
    [ValidateSet("Expanding", "Expanded", "Backfilling", "Backfilled", "Verified", "Contracting", "Completed", "Undoing", "Undone", "Failed")]
    public string[]? Phase { get; set; }

    [Parameter]
    public SwitchParameter Active { get; set; }

    [Parameter]
    public SwitchParameter IncludeEvents { get; set; }

    protected override object? ErrorTarget => IdGiven ? Id : Table;

    // Id is a long, so 0 cannot mean "not given"; PowerShell tracks what was bound, piped values included.
    private bool IdGiven => MyInvocation.BoundParameters.ContainsKey(nameof(Id));

    protected override void ProcessRecord()
    {
        var query = new MigrationQuery
        {
            Id = IdGiven ? Id : null,
            Schema = Schema,
            Table = Table,
            ActiveOnly = Active.IsPresent,
            IncludeEvents = IncludeEvents.IsPresent,
            Tag = Tag,
            Column = Column,
            // ValidateSet accepts any casing ('addcolumn'); the engine matches operations regardless of case.
            Operations = Operation ?? [],
            Phases = (Phase ?? []).Select(p => Enum.Parse<Engine.Planning.MigrationPhase>(p, ignoreCase: true)).ToList(),
        };

        try
        {
            var migrations = RunEngine((engine, ct) => engine.GetMigrationsAsync(query, ct));
            foreach (var migration in migrations)
            {
                WriteObject(migration);
            }

            // Like Get-Process -Id: asking for one object by id and getting nothing is an error,
            // while an empty result of a filter (-Table, -Active) is just an empty result.
            if (IdGiven && migrations.Count == 0)
            {
                WriteError(NotFound());
            }
        }
        catch (EngineFailedException failure)
        {
            // With ids piped in, the next one is still looked up (unless the server is unreachable).
            ReportFailure(failure);
        }
    }

    private ErrorRecord NotFound()
    {
        var message = string.Format(CultureInfo.InvariantCulture, "No migration with id {0} matches the given filters.", Id);
        return EngineErrors.Create(NotFoundErrorId, ErrorKind.ObjectNotFound, message, Id);
    }
}

