using System.Collections.ObjectModel;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;

namespace ZeroDowntime.Tests;

// There is no PowerShell on the build machines, so the module's surface (cmdlets, manifest, help,
// format file, folder layout, load context) is checked here against the module folder that
// 'dotnet build Module.sln' lays out at out/ZeroDowntime. The cmdlet assembly is read with
// MetadataLoadContext: it targets net8.0 and references PowerShell, neither of which this process has.
public sealed class ModuleSurfaceTests : IClassFixture<BuiltModule>
{
    /// <summary>Get-Verb of PowerShell 7, all groups.</summary>
    private static readonly HashSet<string> ApprovedVerbs = new(StringComparer.Ordinal)
    {
        // Common
        "Add", "Clear", "Close", "Copy", "Enter", "Exit", "Find", "Format", "Get", "Hide", "Join", "Lock",
        "Move", "New", "Open", "Optimize", "Pop", "Push", "Redo", "Remove", "Rename", "Reset", "Resize",
        "Search", "Select", "Set", "Show", "Skip", "Split", "Step", "Switch", "Undo", "Unlock", "Watch",
        // Communications
        "Connect", "Disconnect", "Read", "Receive", "Send", "Write",
        // Data
        "Backup", "Checkpoint", "Compare", "Compress", "Convert", "ConvertFrom", "ConvertTo", "Dismount",
        "Edit", "Expand", "Export", "Group", "Import", "Initialize", "Limit", "Merge", "Mount", "Out",
        "Publish", "Restore", "Save", "Sync", "Unpublish", "Update",
        // Diagnostic
        "Debug", "Measure", "Ping", "Repair", "Resolve", "Test", "Trace",
        // Lifecycle
        "Approve", "Assert", "Build", "Complete", "Confirm", "Deny", "Deploy", "Disable", "Enable", "Install",
        "Invoke", "Register", "Request", "Restart", "Resume", "Start", "Stop", "Submit", "Suspend",
        "Uninstall", "Unregister", "Wait",
        // Security
        "Block", "Grant", "Protect", "Revoke", "Unblock", "Unprotect",
        // Other
        "Use",
    };

    /// <summary>Verbs that only read or show: every other verb changes state and must support -WhatIf.</summary>
    private static readonly HashSet<string> ReadOnlyVerbs = new(StringComparer.Ordinal)
    {
        "Get", "Test", "Find", "Search", "Show", "Measure", "Select", "Compare", "Resolve", "Read", "Watch",
        "Format", "Out", "ConvertFrom", "ConvertTo", "Trace", "Debug", "Ping", "Wait",
    };

    /// <summary>Cmdlets that drop database objects: they must ask for confirmation by default.</summary>
    /// <summary>State-changing (ShouldProcess) but ledger only: they run no DDL, so they have no lock parameters.</summary>
    private static readonly string[] LedgerOnlyCmdlets = ["Remove-MigrationHistory", "Resume-Backfill", "Set-BackfillThrottle", "Suspend-Backfill"];

    private static readonly string[] DroppingCmdlets = ["Complete-Contract", "Complete-VersionContract", "Undo-Migration", "Remove-Index", "Invoke-SafeDdl", "Remove-MigrationHistory"];

    private readonly BuiltModule module;

    public ModuleSurfaceTests(BuiltModule module)
    {
        this.module = module;
    }

    // ---- cmdlets -------------------------------------------------------------------------------

    [Fact]
    public void TheAssemblyHasTheExpectedCmdlets()
    {
        Assert.Equal(
            ["Add-CheckConstraint", "Add-Column", "Add-ForeignKey", "Add-PrimaryKey", "Add-UniqueConstraint", "Complete-Contract", "Complete-VersionContract", "Get-Migration", "Invoke-Backfill", "Invoke-SafeDdl", "New-ColumnRename", "New-ColumnTypeChange", "New-Index", "New-TableRename", "Remove-Index", "Remove-MigrationHistory", "Resume-Backfill", "Set-BackfillThrottle", "Set-ColumnNotNull", "Suspend-Backfill", "Test-ColumnParity", "Undo-Migration"],
            module.Cmdlets.Select(c => c.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void EveryCmdletUsesAnApprovedVerb()
    {
        Assert.All(module.Cmdlets, c => Assert.True(ApprovedVerbs.Contains(c.Verb), $"{c.Name}: '{c.Verb}' is not an approved verb."));
    }

    [Fact]
    public void TheApprovedVerbListCoversPowerShellsVerbClasses()
    {
        // A guard for the hard-coded list: every verb constant of the PowerShell Standard reference
        // assembly (an older, smaller set than PowerShell 7's) must be in it.
        var sma = module.LoadReference("System.Management.Automation");
        var verbClasses = new[] { "VerbsCommon", "VerbsCommunications", "VerbsData", "VerbsDiagnostic", "VerbsLifecycle", "VerbsOther", "VerbsSecurity" };
        var verbs = verbClasses
            .SelectMany(name => sma.GetType("System.Management.Automation." + name, throwOnError: true)!.GetFields(BindingFlags.Public | BindingFlags.Static))
            .Where(f => f.IsLiteral)
            .Select(f => (string)f.GetRawConstantValue()!)
            .ToList();

        Assert.NotEmpty(verbs);
        Assert.All(verbs, v => Assert.Contains(v, ApprovedVerbs));
    }

    [Fact]
    public void EveryStateChangingCmdletSupportsShouldProcess()
    {
        var stateChanging = module.Cmdlets.Where(c => !ReadOnlyVerbs.Contains(c.Verb)).ToList();

        Assert.NotEmpty(stateChanging);
        Assert.All(stateChanging, c => Assert.True(c.SupportsShouldProcess, $"{c.Name} changes state but does not support -WhatIf/-Confirm."));
    }

    [Fact]
    public void CmdletsThatDropObjectsHaveConfirmImpactHigh()
    {
        foreach (var name in DroppingCmdlets)
        {
            var cmdlet = module.Cmdlet(name);
            Assert.True(cmdlet.SupportsShouldProcess, $"{name} must support -Confirm.");
            Assert.Equal("High", cmdlet.ConfirmImpact);
        }
    }

    [Fact]
    public void EveryCmdletDeclaresItsOutputType()
    {
        Assert.All(module.Cmdlets, c => Assert.True(c.OutputTypes.Count > 0, $"{c.Name} has no [OutputType]."));
        // Test-ColumnParity outputs a ParityResult (which carries Id and Connection, so it pipes on like a migration).
        Assert.All(module.Cmdlets.Where(c => c.Name != "Test-ColumnParity"), c => Assert.Contains("ZeroDowntime.Engine.Migration", c.OutputTypes));
        Assert.Equal(["ZeroDowntime.Engine.ParityResult"], module.Cmdlet("Test-ColumnParity").OutputTypes);
    }

    [Fact]
    public void MigrationIdsBindFromThePipelineByPropertyName()
    {
        // What makes 'New-TableRename ... | Complete-Contract' work: Id and Connection bind from the Migration.
        foreach (var name in new[] { "Complete-Contract", "Undo-Migration", "Get-Migration", "Invoke-Backfill", "Test-ColumnParity" })
        {
            var cmdlet = module.Cmdlet(name);
            var id = cmdlet.Parameter("Id");
            Assert.True(id.ByPropertyName, $"{name} -Id must bind from the pipeline by property name.");
            Assert.Contains("MigrationId", id.Aliases);
            Assert.True(cmdlet.Parameter("Connection").ByPropertyName, $"{name} -Connection must bind from the pipeline by property name.");
        }
    }

    [Fact]
    public void OnlyTheDdlCmdletsHaveLockParameters()
    {
        foreach (var cmdlet in module.Cmdlets.Where(c => !LedgerOnlyCmdlets.Contains(c.Name)))
        {
            var hasLockTimeout = cmdlet.Parameters.Any(p => p.Name == "LockTimeout");
            var hasLockRetryTimeout = cmdlet.Parameters.Any(p => p.Name == "LockRetryTimeout");
            Assert.Equal(cmdlet.SupportsShouldProcess, hasLockTimeout);
            Assert.Equal(cmdlet.SupportsShouldProcess, hasLockRetryTimeout);
        }
    }

    [Fact]
    public void EveryDdlCmdletCanGiveItsPlanAsDataAndRunOnlyAnApprovedOne()
    {
        // -PlanOnly, -PlanPath, -ExpectedPlan come with the lock parameters, from the one base class
        // whose PlanThenRun every state-changing DDL cmdlet goes through.
        foreach (var cmdlet in module.Cmdlets.Where(c => !LedgerOnlyCmdlets.Contains(c.Name)))
        {
            foreach (var name in new[] { "PlanOnly", "PlanPath", "ExpectedPlan" })
            {
                Assert.Equal(cmdlet.SupportsShouldProcess, cmdlet.Parameters.Any(p => p.Name == name));
            }
        }
    }

    [Fact]
    public void TheCmdletAssemblyReferencesNoDependencyButTheEngine()
    {
        // Anything the cmdlet assembly referenced directly would be resolved by the default load
        // context, outside the isolation; the engine is the only bridge.
        var references = module.CmdletAssembly.GetReferencedAssemblies().Select(r => r.Name!).ToList();

        Assert.Contains("ZeroDowntime.Engine", references);
        Assert.Contains("System.Management.Automation", references);
        var shipped = Directory.GetFiles(module.Layout.DependenciesDir, "*.dll").Select(Path.GetFileNameWithoutExtension).ToHashSet(StringComparer.OrdinalIgnoreCase);
        Assert.All(references.Where(shipped.Contains), r => Assert.Equal("ZeroDowntime.Engine", r));
    }

    [Fact]
    public void NoPublicTypeNeedsADependencyToLoad()
    {
        // Import-Module calls GetExportedTypes() before anything of ours has run (our resolver
        // included), so loading a public type must not need the engine or its dependencies: no base
        // type or interface from them, and no value-type field of theirs. Reference-type fields,
        // properties and method signatures are fine: they are resolved later, on first use.
        var shipped = Directory.GetFiles(module.Layout.DependenciesDir, "*.dll").Select(Path.GetFileNameWithoutExtension).ToHashSet(StringComparer.OrdinalIgnoreCase);
        bool FromDependency(Type t) => shipped.Contains(t.Assembly.GetName().Name!) || (t.IsGenericType && t.GetGenericArguments().Any(FromDependency));

        foreach (var type in module.CmdletAssembly.GetExportedTypes())
        {
            for (var current = type; current is not null; current = current.BaseType)
            {
                Assert.False(FromDependency(current), $"{type.FullName} derives from {current.FullName}, which lives in Dependencies/.");
            }

            Assert.All(type.GetInterfaces(), i => Assert.False(FromDependency(i), $"{type.FullName} implements {i.FullName}, which lives in Dependencies/."));

            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            Assert.All(
                type.GetFields(all).Where(f => f.FieldType.IsValueType),
                f => Assert.False(FromDependency(f.FieldType), $"{type.FullName}.{f.Name} is a struct from Dependencies/."));
        }
    }

    [Fact]
    public void LockTimeoutsRejectValuesThatWouldDisableLockTimeout()
    {
        // lock_timeout = '0ms' means no timeout at all; a bare number (ticks) would round down to it.
        foreach (var cmdlet in module.Cmdlets.Where(c => c.SupportsShouldProcess && !LedgerOnlyCmdlets.Contains(c.Name)))
        {
            var property = cmdlet.Type.GetProperty("LockTimeout")!;
            var range = property.GetCustomAttributesData().Single(a => a.AttributeType.Name == "ValidateTimeSpanRangeAttribute");
            Assert.True((double)range.ConstructorArguments[0].Value! >= 1, $"{cmdlet.Name} -LockTimeout accepts less than 1 ms.");
        }
    }

    [Fact]
    public void EveryDurationParameterGoesThroughTheOneDurationConverter()
    {
        // A TimeSpan parameter without it would read -Delay 500 as 500 ticks again.
        var durations = module.Cmdlets
            .SelectMany(c => c.Type.GetProperties().Select(p => (Cmdlet: c, Property: p)))
            .Where(x => x.Property.PropertyType.FullName == typeof(TimeSpan).FullName
                && x.Property.GetCustomAttributesData().Any(a => a.AttributeType.Name == "ParameterAttribute"))
            .ToList();

        Assert.NotEmpty(durations);
        Assert.All(durations, x => Assert.True(
            x.Property.GetCustomAttributesData().Any(a => a.AttributeType.Name == "DurationAttribute"),
            $"{x.Cmdlet.Name} -{x.Property.Name} is a TimeSpan without [Duration]."));
    }

    [Fact]
    public void EveryEngineErrorKindNamesAPowerShellErrorCategory()
    {
        var sma = module.LoadReference("System.Management.Automation");
        var categories = EnumNames(sma.GetType("System.Management.Automation.ErrorCategory", throwOnError: true)!);
        var kinds = EnumNames(module.EngineAssembly.GetType("ZeroDowntime.Engine.Errors.ErrorKind", throwOnError: true)!);

        Assert.NotEmpty(kinds);
        Assert.All(kinds, k => Assert.Contains(k, categories));
    }

    // ---- manifest ------------------------------------------------------------------------------

    [Fact]
    public void TheManifestExportsExactlyTheCmdletsOfTheAssembly()
    {
        var exported = module.Manifest.StringList("CmdletsToExport");

        Assert.All(exported, name => Assert.DoesNotContain('*', name));
        Assert.Equal(
            module.Cmdlets.Select(c => c.Name).Order(StringComparer.Ordinal),
            exported.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TheManifestExportsNoFunctionsAliasesOrVariables()
    {
        Assert.Empty(module.Manifest.StringList("FunctionsToExport"));
        Assert.Empty(module.Manifest.StringList("AliasesToExport"));
        Assert.Empty(module.Manifest.StringList("VariablesToExport"));
    }

    [Fact]
    public void TheManifestTargetsPowerShell74Core()
    {
        Assert.Equal(["Core"], module.Manifest.StringList("CompatiblePSEditions"));
        Assert.Equal("7.4", module.Manifest.String("PowerShellVersion"));
    }

    [Fact]
    public void TheManifestPointsAtFilesThatShip()
    {
        Assert.Equal("ZeroDowntime.PowerShell.dll", module.Manifest.String("RootModule"));
        Assert.True(File.Exists(Path.Combine(module.Layout.ModuleDir, module.Manifest.String("RootModule"))));

        var formats = module.Manifest.StringList("FormatsToProcess");
        Assert.Equal(["ZeroDowntime.format.ps1xml"], formats);
        Assert.All(formats, f => Assert.True(File.Exists(Path.Combine(module.Layout.ModuleDir, f)), $"{f} is not in the module folder."));
    }

    [Fact]
    public void TheManifestVersionMatchesTheAssemblyVersion()
    {
        var manifestVersion = Version.Parse(module.Manifest.String("ModuleVersion"));
        var assemblyVersion = module.CmdletAssembly.GetName().Version!;

        Assert.Equal(manifestVersion, new Version(assemblyVersion.Major, assemblyVersion.Minor, assemblyVersion.Build));
    }

    [Fact]
    public void TheManifestHasItsIdentityAndGalleryData()
    {
        Assert.True(Guid.TryParse(module.Manifest.String("GUID"), out _));
        Assert.False(string.IsNullOrWhiteSpace(module.Manifest.String("Author")));
        Assert.False(string.IsNullOrWhiteSpace(module.Manifest.String("CompanyName")));
        Assert.False(string.IsNullOrWhiteSpace(module.Manifest.String("Copyright")));
        Assert.False(string.IsNullOrWhiteSpace(module.Manifest.String("Description")));

        var psData = module.Manifest.Table("PrivateData").Table("PSData");
        Assert.Equal(["PostgreSQL", "Migration", "ZeroDowntime", "Schema", "DBA"], psData.StringList("Tags"));
        Assert.Equal("https://github.com/zerodowntime/ZeroDowntime", psData.String("ProjectUri"));
        Assert.Equal("https://github.com/zerodowntime/ZeroDowntime/blob/main/LICENSE", psData.String("LicenseUri"));
        Assert.False(string.IsNullOrWhiteSpace(psData.String("ReleaseNotes")));
    }

    [Fact]
    public void TheShippedManifestIsTheRepositorysManifest()
    {
        Assert.Equal(
            File.ReadAllText(Path.Combine(module.Layout.RepoRoot, "ZeroDowntime.psd1")),
            File.ReadAllText(module.Layout.ManifestPath));
    }

    [Fact]
    public void TheDataFileParserReadsWhatPowerShellWould()
    {
        var parsed = PowerShellDataFile.Parse("""
            # comment
            <# block
               comment #>
            @{
                A = 'it''s'; B = @('x', 'y'
                    'z')
                'C' = @{ D = $true; E = 42 }
                F = @()
                G = "plain"
            }
            """);

        Assert.Equal("it's", parsed.String("A"));
        Assert.Equal(["x", "y", "z"], parsed.StringList("B"));
        Assert.Equal(true, parsed.Table("C")["D"]);
        Assert.Equal(42L, parsed.Table("C")["E"]);
        Assert.Empty(parsed.StringList("F"));
        Assert.Equal("plain", parsed.String("G"));
        Assert.Throws<FormatException>(() => PowerShellDataFile.Parse("@{ A = Get-Date }"));
        Assert.Throws<FormatException>(() => PowerShellDataFile.Parse("@{ A = 'x' "));
    }

    // ---- layout --------------------------------------------------------------------------------

    [Fact]
    public void TheEngineAndItsDependenciesShipInTheDependencyFolder()
    {
        foreach (var name in new[] { "ZeroDowntime.Engine.dll", "Npgsql.dll", "Polly.Core.dll", "Microsoft.Extensions.Logging.Abstractions.dll" })
        {
            Assert.True(File.Exists(Path.Combine(module.Layout.DependenciesDir, name)), $"Dependencies/{name} is missing.");
        }
    }

    [Fact]
    public void TheModuleRootHoldsOnlyTheCmdletAssembly()
    {
        var rootAssemblies = Directory.GetFiles(module.Layout.ModuleDir, "*.dll").Select(Path.GetFileName);

        Assert.Equal(["ZeroDowntime.PowerShell.dll"], rootAssemblies);
        Assert.False(File.Exists(Path.Combine(module.Layout.ModuleDir, "Npgsql.dll")));
        Assert.False(File.Exists(Path.Combine(module.Layout.ModuleDir, "ZeroDowntime.Engine.dll")));
    }

    [Fact]
    public void TheModuleShipsNoPowerShellAssembly()
    {
        var shipped = Directory.GetFiles(module.Layout.ModuleDir, "*.dll", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();

        Assert.DoesNotContain("System.Management.Automation.dll", shipped);
        Assert.DoesNotContain(shipped, f => f!.StartsWith("Microsoft.PowerShell.", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void EveryReferenceOfAShippedDependencyIsShippedOrPartOfDotNet()
    {
        // Otherwise the engine would fail at run time with a FileNotFoundException for the missing one.
        var shipped = Directory.GetFiles(module.Layout.DependenciesDir, "*.dll").Select(Path.GetFileNameWithoutExtension).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var framework = Directory.GetFiles(RuntimeEnvironment.GetRuntimeDirectory(), "*.dll").Select(Path.GetFileNameWithoutExtension).ToHashSet(StringComparer.OrdinalIgnoreCase);

        foreach (var path in Directory.GetFiles(module.Layout.DependenciesDir, "*.dll"))
        {
            var assembly = module.Load(path);
            foreach (var reference in assembly.GetReferencedAssemblies())
            {
                Assert.True(
                    shipped.Contains(reference.Name!) || framework.Contains(reference.Name!),
                    $"{Path.GetFileName(path)} references {reference.Name}, which is neither in Dependencies/ nor part of .NET.");
            }
        }
    }

    [Fact]
    public void TheAboutHelpShips()
    {
        var path = Path.Combine(module.Layout.ModuleDir, "en-US", "about_ZeroDowntime.help.txt");
        var text = File.ReadAllText(path);

        Assert.StartsWith("TOPIC", text);
        Assert.Contains("about_ZeroDowntime", text);
        foreach (var word in new[] { "expand", "backfill", "verify", "contract", "undo", "postgresql://", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPASSFILE", "-Credential", "lock_timeout", "ledger" })
        {
            Assert.Contains(word, text, StringComparison.Ordinal);
        }
    }

    // ---- format file ---------------------------------------------------------------------------

    [Fact]
    public void TheFormatFileIsWellFormedAndDescribesTheEngineTypes()
    {
        var document = XDocument.Load(Path.Combine(module.Layout.ModuleDir, "ZeroDowntime.format.ps1xml"));

        Assert.Equal("Configuration", document.Root!.Name.LocalName);
        var views = document.Root.Element("ViewDefinitions")!.Elements("View").ToList();
        Assert.Equal(views.Count, views.Select(v => (string)v.Element("Name")!).Distinct().Count());

        var selected = views.Select(v => (string)v.Element("ViewSelectedBy")!.Element("TypeName")!).ToHashSet();
        Assert.Contains("ZeroDowntime.Engine.Migration", selected);
        Assert.Contains("ZeroDowntime.Engine.MigrationEvent", selected);

        // The Migration table view: these columns, in this order, so Phase stays readable at 80 columns.
        var migrationTable = views.Single(v => (string)v.Element("ViewSelectedBy")!.Element("TypeName")! == "ZeroDowntime.Engine.Migration" && v.Element("TableControl") is not null);
        var labels = migrationTable.Descendants("TableColumnHeader").Select(h => (string?)h.Element("Label")).ToList();
        Assert.Equal(["Id", "Table", "Column", "NewName", "Phase", "Operation"], labels);
        Assert.Contains(views, v => (string)v.Element("ViewSelectedBy")!.Element("TypeName")! == "ZeroDowntime.Engine.Migration" && v.Element("ListControl") is not null);
    }

    [Fact]
    public void EveryFormatViewNamesRealPropertiesAndHasAnItemPerColumn()
    {
        var document = XDocument.Load(Path.Combine(module.Layout.ModuleDir, "ZeroDowntime.format.ps1xml"));

        foreach (var view in document.Descendants("View"))
        {
            var typeName = (string)view.Element("ViewSelectedBy")!.Element("TypeName")!;
            var type = module.EngineAssembly.GetType(typeName);
            Assert.True(type is not null, $"Format view {(string?)view.Element("Name")} selects {typeName}, which the engine does not define.");
            var properties = type!.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);

            foreach (var name in view.Descendants("PropertyName").Select(e => (string)e))
            {
                Assert.True(properties.Contains(name), $"{typeName} has no property {name}.");
            }

            foreach (var script in view.Descendants("ScriptBlock").Select(e => (string)e))
            {
                foreach (Match match in Regex.Matches(script, @"\$_\.(\w+)"))
                {
                    Assert.True(properties.Contains(match.Groups[1].Value), $"{typeName} has no property {match.Groups[1].Value} (used in '{script}').");
                }
            }

            if (view.Element("TableControl") is { } table)
            {
                var headers = table.Element("TableHeaders")!.Elements("TableColumnHeader").Count();
                Assert.All(table.Descendants("TableColumnItems"), items => Assert.Equal(headers, items.Elements("TableColumnItem").Count()));
            }
        }
    }

    // ---- MAML help -----------------------------------------------------------------------------

    [Fact]
    public void TheHelpDocumentsEveryCmdletWithSynopsisDescriptionAndExample()
    {
        var help = module.Help;
        foreach (var cmdlet in module.Cmdlets)
        {
            var command = help.Command(cmdlet.Name);
            Assert.True(command is not null, $"The MAML help has no command:command for {cmdlet.Name}.");
            Assert.Equal(cmdlet.Verb, command!.Verb);
            Assert.Equal(cmdlet.Noun, command.Noun);
            Assert.False(string.IsNullOrWhiteSpace(command.Synopsis), $"{cmdlet.Name} has no synopsis.");
            Assert.False(string.IsNullOrWhiteSpace(command.Description), $"{cmdlet.Name} has no description.");
            Assert.NotEmpty(command.Examples);
            Assert.All(command.Examples, e =>
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Code), $"{cmdlet.Name} has an example without code.");
                Assert.False(string.IsNullOrWhiteSpace(e.Remarks), $"{cmdlet.Name} has an example without remarks.");
            });
        }

        Assert.Equal(module.Cmdlets.Count, help.CommandNames.Count);
    }

    [Fact]
    public void TheHelpDocumentsEveryParameterAsTheCmdletDeclaresIt()
    {
        foreach (var cmdlet in module.Cmdlets)
        {
            var command = module.Help.Command(cmdlet.Name)!;
            var expected = cmdlet.Parameters.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            if (cmdlet.SupportsShouldProcess)
            {
                expected.Add("WhatIf");
                expected.Add("Confirm");
            }

            Assert.Equal(expected.Order(StringComparer.Ordinal), command.Parameters.Select(p => p.Name).Order(StringComparer.Ordinal));
            Assert.Equal(expected.Order(StringComparer.Ordinal), command.SyntaxParameters.Select(p => p.Name).Order(StringComparer.Ordinal));

            // The syntax section repeats each parameter; it must agree with the parameters section.
            foreach (var inSyntax in command.SyntaxParameters)
            {
                var documented = command.Parameters.Single(p => p.Name == inSyntax.Name);
                Assert.Equal((documented.TypeName, documented.Required, documented.Position, documented.PipelineInput), (inSyntax.TypeName, inSyntax.Required, inSyntax.Position, inSyntax.PipelineInput));
            }

            foreach (var parameter in cmdlet.Parameters)
            {
                var documented = command.Parameters.Single(p => p.Name == parameter.Name);
                var where = $"{cmdlet.Name} -{parameter.Name}";
                Assert.False(string.IsNullOrWhiteSpace(documented.Description), $"{where} has no description.");
                Assert.True(parameter.Type.FullName == documented.TypeName, $"{where}: help says {documented.TypeName}, the cmdlet takes {parameter.Type.FullName}.");
                Assert.True(parameter.Mandatory == documented.Required, $"{where}: help says required={documented.Required}.");
                Assert.True(parameter.PositionText == documented.Position, $"{where}: help says position {documented.Position}, the cmdlet has {parameter.PositionText}.");
                Assert.True((parameter.ByValue || parameter.ByPropertyName) == documented.PipelineInput.StartsWith("True", StringComparison.Ordinal), $"{where}: help says pipeline input '{documented.PipelineInput}'.");
                Assert.True(parameter.ByValue == documented.PipelineInput.Contains("ByValue", StringComparison.Ordinal), $"{where}: help says pipeline input '{documented.PipelineInput}'.");
                Assert.True(parameter.ByPropertyName == documented.PipelineInput.Contains("ByPropertyName", StringComparison.Ordinal), $"{where}: help says pipeline input '{documented.PipelineInput}'.");
                Assert.Equal(parameter.Aliases.Order(StringComparer.Ordinal), documented.Aliases.Order(StringComparer.Ordinal));
            }
        }
    }

    // ---- load context --------------------------------------------------------------------------

    [Fact]
    public void TheDependencyLoadContextLoadsTheEngineAndResolvesNpgsqlInsideItself()
    {
        var probe = new AssemblyLoadContext("module-probe", isCollectible: true);
        try
        {
            var cmdletAssembly = probe.LoadFromAssemblyPath(module.Layout.CmdletAssemblyPath);
            var contextType = cmdletAssembly.GetType("ZeroDowntime.PowerShell.Loading.DependencyLoadContext", throwOnError: true)!;
            var context = (AssemblyLoadContext)Activator.CreateInstance(contextType, module.Layout.DependenciesDir)!;

            Assert.Equal("ZeroDowntime", context.Name);

            var engine = context.LoadFromAssemblyName(new AssemblyName("ZeroDowntime.Engine"));
            Assert.Same(context, AssemblyLoadContext.GetLoadContext(engine));
            Assert.Equal(Path.Combine(module.Layout.DependenciesDir, "ZeroDowntime.Engine.dll"), engine.Location);

            // Let the runtime bind the engine's own reference to Npgsql, the way running code would.
            var npgsql = FirstTypeFrom(engine, "Npgsql").Assembly;
            Assert.Same(context, AssemblyLoadContext.GetLoadContext(npgsql));
            Assert.NotSame(AssemblyLoadContext.Default, AssemblyLoadContext.GetLoadContext(npgsql));
            Assert.Equal(Path.Combine(module.Layout.DependenciesDir, "Npgsql.dll"), npgsql.Location);

            // What the module does not ship falls back to the default context, shared with PowerShell.
            var runtime = context.LoadFromAssemblyName(new AssemblyName("System.Runtime"));
            Assert.Same(AssemblyLoadContext.Default, AssemblyLoadContext.GetLoadContext(runtime));
        }
        finally
        {
            UninstallResolver(probe);
            probe.Unload();
        }
    }

    [Fact]
    public void TheDefaultContextResolverAnswersOnlyForTheEngine()
    {
        var probe = new AssemblyLoadContext("resolver-probe", isCollectible: true);
        try
        {
            var cmdletAssembly = probe.LoadFromAssemblyPath(module.Layout.CmdletAssemblyPath);
            var resolver = cmdletAssembly.GetType("ZeroDowntime.PowerShell.Loading.EngineAssemblyResolver", throwOnError: true)!;
            var handler = resolver.GetMethod("OnDefaultContextResolving", BindingFlags.NonPublic | BindingFlags.Static)!;

            var engine = (Assembly?)handler.Invoke(null, [AssemblyLoadContext.Default, new AssemblyName("ZeroDowntime.Engine")]);
            var npgsql = (Assembly?)handler.Invoke(null, [AssemblyLoadContext.Default, new AssemblyName("Npgsql")]);

            Assert.NotNull(engine);
            Assert.Equal("ZeroDowntime", AssemblyLoadContext.GetLoadContext(engine!)!.Name);
            Assert.Equal(Path.Combine(module.Layout.DependenciesDir, "ZeroDowntime.Engine.dll"), engine!.Location);
            Assert.Null(npgsql);

            // The same engine every time: two copies would make two incompatible Migration types.
            var again = (Assembly?)handler.Invoke(null, [AssemblyLoadContext.Default, new AssemblyName("ZeroDowntime.Engine")]);
            Assert.Same(engine, again);
        }
        finally
        {
            UninstallResolver(probe);
            probe.Unload();
        }
    }

    private static Type FirstTypeFrom(Assembly assembly, string referencedAssemblyName)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var type in assembly.GetTypes())
        {
            var used = type.GetMethods(all).SelectMany(m => m.GetParameters().Select(p => p.ParameterType).Append(m.ReturnType))
                .Concat(type.GetFields(all).Select(f => f.FieldType))
                .Concat(type.GetProperties(all).Select(p => p.PropertyType));
            foreach (var candidate in used.SelectMany(Flatten))
            {
                if (candidate.Assembly.GetName().Name == referencedAssemblyName)
                {
                    return candidate;
                }
            }
        }

        throw new InvalidOperationException($"{assembly.GetName().Name} uses no type from {referencedAssemblyName}.");
    }

    private static IEnumerable<Type> Flatten(Type type)
    {
        yield return type;
        if (type.HasElementType)
        {
            foreach (var inner in Flatten(type.GetElementType()!))
            {
                yield return inner;
            }
        }

        if (type.IsGenericType)
        {
            foreach (var inner in type.GetGenericArguments().SelectMany(Flatten))
            {
                yield return inner;
            }
        }
    }

    // Loading the cmdlet assembly ran its module initializer, which hooked AssemblyLoadContext.Default.Resolving.
    private static void UninstallResolver(AssemblyLoadContext probe)
    {
        foreach (var assembly in probe.Assemblies)
        {
            assembly.GetType("ZeroDowntime.PowerShell.Loading.EngineAssemblyResolver")
                ?.GetMethod("Uninstall", BindingFlags.NonPublic | BindingFlags.Static)
                ?.Invoke(null, null);
        }
    }

    private static HashSet<string> EnumNames(Type enumType)
        => enumType.GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => f.Name).ToHashSet(StringComparer.Ordinal);
}

/// <summary>Where the built module is.</summary>
public sealed class ModuleLayout
{
    public ModuleLayout()
    {
        RepoRoot = FindRepoRoot();
        ModuleDir = Path.Combine(RepoRoot, "out", "ZeroDowntime");
        DependenciesDir = Path.Combine(ModuleDir, "Dependencies");
        ManifestPath = Path.Combine(ModuleDir, "ZeroDowntime.psd1");
        CmdletAssemblyPath = Path.Combine(ModuleDir, "ZeroDowntime.PowerShell.dll");
        HelpPath = Path.Combine(ModuleDir, "en-US", "ZeroDowntime.PowerShell.dll-Help.xml");
    }

    public string RepoRoot { get; }

    public string ModuleDir { get; }

    public string DependenciesDir { get; }

    public string ManifestPath { get; }

    public string CmdletAssemblyPath { get; }

    public string HelpPath { get; }

    /// <summary>
    /// PowerShell Standard's reference assemblies, of the version the PowerShell project restored
    /// and from the NuGet packages folder it restored into (both recorded in its
    /// project.assets.json), else the default folder. (A version written here went stale when the
    /// project moved to 5.1.1: the tests then passed only where an older restore had left it.)
    /// </summary>
    public string PowerShellReferenceDir()
    {
        const string package = "PowerShellStandard.Library/";
        var assets = Path.Combine(RepoRoot, "src", "ZeroDowntime.PowerShell", "obj", "project.assets.json");
        if (!File.Exists(assets))
        {
            throw new FileNotFoundException("The PowerShell project is not restored: run 'dotnet build Module.sln'.", assets);
        }

        using var json = JsonDocument.Parse(File.ReadAllText(assets));
        var library = json.RootElement.GetProperty("libraries").EnumerateObject().FirstOrDefault(l => l.Name.StartsWith(package, StringComparison.OrdinalIgnoreCase));
        if (library.Value.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidOperationException($"{assets} has no {package.TrimEnd('/')}.");
        }

        var relative = Path.Combine(library.Value.GetProperty("path").GetString()!, "lib", "netstandard2.0");
        var candidates = new List<string>();
        if (json.RootElement.TryGetProperty("packageFolders", out var folders))
        {
            candidates.AddRange(folders.EnumerateObject().Select(f => f.Name));
        }

        if (Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } packages)
        {
            candidates.Add(packages);
        }

        candidates.Add(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"));

        return candidates.Select(c => Path.Combine(c, relative)).FirstOrDefault(Directory.Exists)
            ?? throw new DirectoryNotFoundException($"{library.Name} ({relative}) not found in: {string.Join(", ", candidates)}");
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Module.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"No Module.sln above {AppContext.BaseDirectory}.");
    }
}

/// <summary>
/// The built module, read once for all the tests: its cmdlets (through MetadataLoadContext), its
/// manifest and its MAML help.
/// </summary>
public sealed class BuiltModule : IDisposable
{
    private readonly MetadataLoadContext metadata;

    public BuiltModule()
    {
        Layout = new ModuleLayout();
        if (!File.Exists(Layout.CmdletAssemblyPath))
        {
            throw new FileNotFoundException("The module is not built: run 'dotnet build Module.sln' (the test project's build does it).", Layout.CmdletAssemblyPath);
        }

        var paths = Directory.GetFiles(Layout.ModuleDir, "*.dll")
            .Concat(Directory.GetFiles(Layout.DependenciesDir, "*.dll"))
            .Concat(Directory.GetFiles(Layout.PowerShellReferenceDir(), "*.dll"))
            .Concat(Directory.GetFiles(RuntimeEnvironment.GetRuntimeDirectory(), "*.dll"));
        metadata = new MetadataLoadContext(new PathAssemblyResolver(paths));

        CmdletAssembly = metadata.LoadFromAssemblyPath(Layout.CmdletAssemblyPath);
        EngineAssembly = metadata.LoadFromAssemblyPath(Path.Combine(Layout.DependenciesDir, "ZeroDowntime.Engine.dll"));
        Cmdlets = CmdletAssembly.GetTypes()
            .Select(CmdletSurface.TryRead)
            .OfType<CmdletSurface>()
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToList();
        Manifest = PowerShellDataFile.Parse(File.ReadAllText(Layout.ManifestPath));
        Help = MamlHelp.Load(Layout.HelpPath);
    }

    public ModuleLayout Layout { get; }

    public Assembly CmdletAssembly { get; }

    public Assembly EngineAssembly { get; }

    public IReadOnlyList<CmdletSurface> Cmdlets { get; }

    public PowerShellData Manifest { get; }

    public MamlHelp Help { get; }

    public CmdletSurface Cmdlet(string name) => Cmdlets.Single(c => c.Name == name);

    public Assembly Load(string path) => metadata.LoadFromAssemblyPath(path);

    public Assembly LoadReference(string name) => metadata.LoadFromAssemblyName(name);

    public void Dispose() => metadata.Dispose();
}

/// <summary>A cmdlet as PowerShell would see it: name, ShouldProcess settings, output types, parameters.</summary>
public sealed record CmdletSurface(
    Type Type,
    string Verb,
    string Noun,
    bool SupportsShouldProcess,
    string ConfirmImpact,
    IReadOnlyList<string> OutputTypes,
    IReadOnlyList<ParameterSurface> Parameters)
{
    private const string Sma = "System.Management.Automation.";

    public string Name => $"{Verb}-{Noun}";

    public ParameterSurface Parameter(string name) => Parameters.Single(p => p.Name == name);

    public static CmdletSurface? TryRead(Type type)
    {
        var cmdlet = type.GetCustomAttributesData().SingleOrDefault(a => a.AttributeType.FullName == Sma + "CmdletAttribute");
        if (cmdlet is null || type.IsAbstract)
        {
            return null;
        }

        var supportsShouldProcess = cmdlet.NamedArguments.Where(a => a.MemberName == "SupportsShouldProcess").Select(a => (bool)a.TypedValue.Value!).FirstOrDefault();
        var impact = cmdlet.NamedArguments.Where(a => a.MemberName == "ConfirmImpact").Select(a => EnumName(a.TypedValue)).FirstOrDefault() ?? "Medium";

        var outputTypes = type.GetCustomAttributesData()
            .Where(a => a.AttributeType.FullName == Sma + "OutputTypeAttribute")
            .SelectMany(a => a.ConstructorArguments)
            .SelectMany(arg => arg.Value is ReadOnlyCollection<CustomAttributeTypedArgument> items ? items : [arg])
            .Select(arg => arg.Value is Type t ? t.FullName! : (string)arg.Value!)
            .ToList();

        var parameters = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(ParameterSurface.TryRead)
            .OfType<ParameterSurface>()
            .ToList();

        return new CmdletSurface(
            type,
            (string)cmdlet.ConstructorArguments[0].Value!,
            (string)cmdlet.ConstructorArguments[1].Value!,
            supportsShouldProcess,
            impact,
            outputTypes,
            parameters);
    }

    // MetadataLoadContext gives enum arguments as their underlying value; find the member's name.
    private static string EnumName(CustomAttributeTypedArgument argument)
        => argument.ArgumentType.GetFields(BindingFlags.Public | BindingFlags.Static)
            .Single(f => Equals(f.GetRawConstantValue(), argument.Value)).Name;
}

/// <summary>A cmdlet parameter as declared by its [Parameter] and [Alias] attributes.</summary>
public sealed record ParameterSurface(
    string Name,
    Type Type,
    bool Mandatory,
    int? Position,
    bool ByValue,
    bool ByPropertyName,
    IReadOnlyList<string> Aliases)
{
    /// <summary>The position as MAML writes it: a number, or "named".</summary>
    public string PositionText => Position?.ToString(CultureInfo.InvariantCulture) ?? "named";

    public static ParameterSurface? TryRead(PropertyInfo property)
    {
        var attributes = property.GetCustomAttributesData();
        var parameter = attributes.SingleOrDefault(a => a.AttributeType.FullName == "System.Management.Automation.ParameterAttribute");
        if (parameter is null)
        {
            return null;
        }

        T Named<T>(string name, T fallback)
            => parameter.NamedArguments.Where(a => a.MemberName == name).Select(a => (T)a.TypedValue.Value!).DefaultIfEmpty(fallback).First();

        var position = Named("Position", int.MinValue);
        var aliases = attributes
            .Where(a => a.AttributeType.FullName == "System.Management.Automation.AliasAttribute")
            .SelectMany(a => (ReadOnlyCollection<CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!)
            .Select(a => (string)a.Value!)
            .ToList();

        return new ParameterSurface(
            property.Name,
            property.PropertyType,
            Named("Mandatory", false),
            position == int.MinValue ? null : position,
            Named("ValueFromPipeline", false),
            Named("ValueFromPipelineByPropertyName", false),
            aliases);
    }
}

/// <summary>The MAML help file, reduced to what the tests check.</summary>
public sealed class MamlHelp
{
    private static readonly XNamespace CommandNs = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
    private static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";
    private static readonly XNamespace Msh = "http://msh";

    private readonly Dictionary<string, MamlCommand> commands;

    private MamlHelp(Dictionary<string, MamlCommand> commands)
    {
        this.commands = commands;
    }

    public IReadOnlyCollection<string> CommandNames => commands.Keys;

    public MamlCommand? Command(string name) => commands.GetValueOrDefault(name);

    public static MamlHelp Load(string path)
    {
        var document = XDocument.Load(path);
        if (document.Root!.Name != Msh + "helpItems" || (string?)document.Root.Attribute("schema") != "maml")
        {
            throw new FormatException($"{path}: the root must be <helpItems schema=\"maml\" xmlns=\"http://msh\">.");
        }

        var commands = document.Root.Elements(CommandNs + "command").Select(ReadCommand).ToDictionary(c => c.Name, StringComparer.Ordinal);
        return new MamlHelp(commands);
    }

    private static MamlCommand ReadCommand(XElement command)
    {
        var details = command.Element(CommandNs + "details")!;
        return new MamlCommand(
            (string)details.Element(CommandNs + "name")!,
            (string)details.Element(CommandNs + "verb")!,
            (string)details.Element(CommandNs + "noun")!,
            Paragraphs(details.Element(Maml + "description")),
            Paragraphs(command.Element(Maml + "description")),
            command.Element(CommandNs + "syntax")?.Descendants(CommandNs + "parameter").Select(ReadParameter).ToList() ?? [],
            command.Element(CommandNs + "parameters")?.Elements(CommandNs + "parameter").Select(ReadParameter).ToList() ?? [],
            command.Element(CommandNs + "examples")?.Elements(CommandNs + "example")
                .Select(e => new MamlExample((string?)e.Element(Dev + "code") ?? "", Paragraphs(e.Element(Dev + "remarks"))))
                .ToList() ?? []);
    }

    private static MamlParameter ReadParameter(XElement parameter)
    {
        var aliases = (string?)parameter.Attribute("aliases") ?? "none";
        return new MamlParameter(
            (string)parameter.Element(Maml + "name")!,
            Paragraphs(parameter.Element(Maml + "description")),
            (string?)parameter.Element(Dev + "type")?.Element(Maml + "name") ?? "",
            (string?)parameter.Attribute("required") == "true",
            (string?)parameter.Attribute("position") ?? "",
            (string?)parameter.Attribute("pipelineInput") ?? "",
            aliases == "none" ? [] : aliases.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
    }

    private static string Paragraphs(XElement? element)
        => element is null ? "" : string.Join("\n", element.Elements(Maml + "para").Select(p => p.Value.Trim()));
}

public sealed record MamlCommand(
    string Name,
    string Verb,
    string Noun,
    string Synopsis,
    string Description,
    IReadOnlyList<MamlParameter> SyntaxParameters,
    IReadOnlyList<MamlParameter> Parameters,
    IReadOnlyList<MamlExample> Examples);

public sealed record MamlParameter(string Name, string Description, string TypeName, bool Required, string Position, string PipelineInput, IReadOnlyList<string> Aliases);

public sealed record MamlExample(string Code, string Remarks);

/// <summary>A parsed PowerShell data file (.psd1) hashtable, with case-insensitive keys like PowerShell's.</summary>
public sealed class PowerShellData
{
    private readonly Dictionary<string, object?> values;

    public PowerShellData(Dictionary<string, object?> values)
    {
        this.values = values;
    }

    public object? this[string key] => values[key];

    public string String(string key) => values[key] as string ?? throw new FormatException($"{key} is not a string.");

    public PowerShellData Table(string key) => values[key] as PowerShellData ?? throw new FormatException($"{key} is not a hashtable.");

    /// <summary>A string or an array of strings, as PowerShell accepts either for list keys.</summary>
    public IReadOnlyList<string> StringList(string key) => values[key] switch
    {
        string single => [single],
        List<object?> list => list.Select(v => v as string ?? throw new FormatException($"{key} holds a non-string.")).ToList(),
        _ => throw new FormatException($"{key} is neither a string nor an array."),
    };
}

/// <summary>
/// Parses the data-only subset of PowerShell that a module manifest should stay within: @{ } tables,
/// @( ) arrays and comma lists, quoted strings, integers, $true/$false/$null and comments. Anything
/// else (commands, variables, expressions) is a FormatException, which keeps the manifest plainly
/// valid for Import-PowerShellDataFile and Test-ModuleManifest.
/// </summary>
public sealed class PowerShellDataFile
{
    private readonly string text;
    private int position;

    private PowerShellDataFile(string text)
    {
        this.text = text;
    }

    public static PowerShellData Parse(string text)
    {
        var parser = new PowerShellDataFile(text);
        parser.SkipTrivia(newlines: true);
        var value = parser.ParseValue() as PowerShellData ?? throw parser.Error("the file must be one @{ } hashtable");
        parser.SkipTrivia(newlines: true);
        if (!parser.AtEnd)
        {
            throw parser.Error("unexpected text after the hashtable");
        }

        return value;
    }

    private bool AtEnd => position >= text.Length;

    private char Current => text[position];

    /// <summary>A value; a comma list ('a', 'b') is an array.</summary>
    private object? ParseValue()
    {
        var items = ParseCommaList();
        return items.Count == 1 ? items[0] : items;
    }

    private List<object?> ParseCommaList()
    {
        var items = new List<object?> { ParsePrimary() };
        SkipTrivia(newlines: false);
        while (!AtEnd && Current == ',')
        {
            // A line may end with the comma; the list goes on on the next one.
            position++;
            SkipTrivia(newlines: true);
            items.Add(ParsePrimary());
            SkipTrivia(newlines: false);
        }

        return items;
    }

    private object? ParsePrimary()
    {
        if (AtEnd)
        {
            throw Error("a value is missing");
        }

        if (Lookahead("@{"))
        {
            return ParseTable();
        }

        if (Lookahead("@("))
        {
            return ParseArray();
        }

        switch (Current)
        {
            case '\'':
                return ParseSingleQuoted();
            case '"':
                return ParseDoubleQuoted();
            case '$':
                return ParseConstant();
        }

        if (char.IsDigit(Current))
        {
            var start = position;
            while (!AtEnd && char.IsDigit(Current))
            {
                position++;
            }

            return long.Parse(text.AsSpan(start, position - start), CultureInfo.InvariantCulture);
        }

        throw Error($"'{Current}' does not start a value allowed in a data file");
    }

    private PowerShellData ParseTable()
    {
        position += 2;
        var values = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
        while (true)
        {
            SkipSeparators();
            if (AtEnd)
            {
                throw Error("the hashtable is not closed with }");
            }

            if (Current == '}')
            {
                position++;
                return new PowerShellData(values);
            }

            var key = Current is '\'' ? ParseSingleQuoted() : Current is '"' ? ParseDoubleQuoted() : ParseBareWord();
            SkipTrivia(newlines: false);
            Expect('=');
            SkipTrivia(newlines: true);
            if (!values.TryAdd(key, ParseValue()))
            {
                throw Error($"the key {key} appears twice");
            }

            SkipTrivia(newlines: false);
            if (!AtEnd && Current is not ('\n' or '\r' or ';' or '}'))
            {
                throw Error("expected a new line, ; or } after a hashtable entry");
            }
        }
    }

    private List<object?> ParseArray()
    {
        position += 2;
        var items = new List<object?>();
        while (true)
        {
            SkipSeparators();
            if (AtEnd)
            {
                throw Error("the array is not closed with )");
            }

            if (Current == ')')
            {
                position++;
                return items;
            }

            // Inside @( ), elements are separated by new lines, ; or commas alike.
            items.AddRange(ParseCommaList());

            SkipTrivia(newlines: false);
            if (!AtEnd && Current is not ('\n' or '\r' or ';' or ')'))
            {
                throw Error("expected a new line, ; or ) after an array element");
            }
        }
    }

    private string ParseSingleQuoted()
    {
        position++;
        var value = new StringBuilder();
        while (true)
        {
            if (AtEnd)
            {
                throw Error("a string is not closed with '");
            }

            if (Current == '\'')
            {
                if (position + 1 < text.Length && text[position + 1] == '\'')
                {
                    value.Append('\'');
                    position += 2;
                    continue;
                }

                position++;
                return value.ToString();
            }

            value.Append(Current);
            position++;
        }
    }

    private string ParseDoubleQuoted()
    {
        position++;
        var start = position;
        while (!AtEnd && Current != '"')
        {
            // Double-quoted strings expand $variables and `escapes; a data file has no use for either.
            if (Current is '$' or '`')
            {
                throw Error("use a single-quoted string: double-quoted strings with $ or ` are expandable");
            }

            position++;
        }

        if (AtEnd)
        {
            throw Error("a string is not closed with \"");
        }

        position++;
        return text[start..(position - 1)];
    }

    private object? ParseConstant()
    {
        foreach (var (name, value) in new (string, object?)[] { ("$true", true), ("$false", false), ("$null", null) })
        {
            if (string.Compare(text, position, name, 0, name.Length, StringComparison.OrdinalIgnoreCase) == 0
                && (position + name.Length >= text.Length || !char.IsLetterOrDigit(text[position + name.Length])))
            {
                position += name.Length;
                return value;
            }
        }

        throw Error("only $true, $false and $null may appear in a data file");
    }

    private string ParseBareWord()
    {
        var start = position;
        while (!AtEnd && (char.IsLetterOrDigit(Current) || Current == '_'))
        {
            position++;
        }

        return position > start ? text[start..position] : throw Error("expected a key");
    }

    private void Expect(char expected)
    {
        if (AtEnd || Current != expected)
        {
            throw Error($"expected '{expected}'");
        }

        position++;
    }

    private void SkipSeparators()
    {
        while (true)
        {
            SkipTrivia(newlines: true);
            if (!AtEnd && Current == ';')
            {
                position++;
                continue;
            }

            return;
        }
    }

    private void SkipTrivia(bool newlines)
    {
        while (!AtEnd)
        {
            if (Current is ' ' or '\t' || (newlines && Current is '\r' or '\n'))
            {
                position++;
            }
            else if (Lookahead("<#"))
            {
                var end = text.IndexOf("#>", position + 2, StringComparison.Ordinal);
                position = end < 0 ? throw Error("a block comment is not closed with #>") : end + 2;
            }
            else if (Current == '#')
            {
                while (!AtEnd && Current is not ('\r' or '\n'))
                {
                    position++;
                }
            }
            else
            {
                return;
            }
        }
    }

    private bool Lookahead(string token) => string.CompareOrdinal(text, position, token, 0, token.Length) == 0;

    private FormatException Error(string message)
    {
        var line = text.AsSpan(0, Math.Min(position, text.Length)).Count('\n') + 1;
        return new FormatException($"Line {line}: {message}.");
    }
}
