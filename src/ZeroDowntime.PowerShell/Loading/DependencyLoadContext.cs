using System.Reflection;
using System.Runtime.Loader;

namespace ZeroDowntime.PowerShell.Loading;

/// <summary>
/// The "ZeroDowntime" load context: holds the engine and everything it depends on (Npgsql, Polly,
/// Microsoft.Extensions.*, System.Diagnostics.DiagnosticSource, ...) from the module's Dependencies
/// folder, so other modules in the same PowerShell session can load other versions of those
/// assemblies without a conflict, and PowerShell's own copies never shadow ours.
/// </summary>
/// <remarks>
/// Deliberately free of System.Management.Automation types: the test project exercises it in a
/// plain .NET process where PowerShell is not available. Public for the same reason.
/// </remarks>
public sealed class DependencyLoadContext : AssemblyLoadContext
{
    public const string ContextName = "ZeroDowntime";

    private readonly string dependencyDirectory;

    public DependencyLoadContext(string dependencyDirectory)
        : base(ContextName, isCollectible: false)
    {
        this.dependencyDirectory = Path.GetFullPath(dependencyDirectory);
    }

    public string DependencyDirectory => dependencyDirectory;

    /// <summary>The path the assembly would be loaded from, or null when the module does not ship it.</summary>
    public string? PathOf(AssemblyName assemblyName)
    {
        if (string.IsNullOrEmpty(assemblyName.Name))
        {
            return null;
        }

        var path = Path.Combine(dependencyDirectory, assemblyName.Name + ".dll");
        return File.Exists(path) ? path : null;
    }

    /// <summary>
    /// Called first for every assembly an assembly of this context references. Ours come from the
    /// folder; anything we do not ship (System.Runtime, System.Management.Automation, ...) returns
    /// null so it falls back to the default context and is shared with PowerShell.
    /// </summary>
    protected override Assembly? Load(AssemblyName assemblyName)
    {
        var path = PathOf(assemblyName);
        return path is null ? null : LoadFromAssemblyPath(path);
    }
}
