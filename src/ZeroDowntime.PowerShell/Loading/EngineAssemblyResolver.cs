using System.Reflection;
using System.Runtime.Loader;

namespace ZeroDowntime.PowerShell.Loading;

/// <summary>
/// Bridges the cmdlet assembly (default load context) to the engine (the "ZeroDowntime" context).
/// The cmdlet assembly references ZeroDowntime.Engine, which is not next to it, so the default
/// context fails to find it and raises Resolving; this handler answers by loading the engine into
/// <see cref="DependencyLoadContext"/>. The engine's own references (Npgsql, ...) are then resolved
/// by that context, never by the default one.
/// </summary>
/// <remarks>Free of System.Management.Automation types, like the load context.</remarks>
internal static class EngineAssemblyResolver
{
    /// <summary>The only assembly the handler answers for: the bridge into the isolated context.</summary>
    internal const string EngineAssemblyName = "ZeroDowntime.Engine";

    internal const string DependencyFolderName = "Dependencies";

    private static readonly object Gate = new();

    // One context per process: the engine must be loaded once, or the Migration objects of one
    // pipeline and the parameter types of the next cmdlet would be different types.
    private static readonly Lazy<DependencyLoadContext> SharedContext = new(
        () => new DependencyLoadContext(DependencyDirectory),
        LazyThreadSafetyMode.ExecutionAndPublication);

    private static bool installed;

    /// <summary>Dependencies/ beside the cmdlet assembly.</summary>
    internal static string DependencyDirectory
        => Path.Combine(Path.GetDirectoryName(typeof(EngineAssemblyResolver).Assembly.Location) ?? AppContext.BaseDirectory, DependencyFolderName);

    internal static DependencyLoadContext Context => SharedContext.Value;

    /// <summary>Idempotent: the module initializer and IModuleAssemblyInitializer both call it.</summary>
    internal static void Install()
    {
        lock (Gate)
        {
            if (!installed)
            {
                AssemblyLoadContext.Default.Resolving += OnDefaultContextResolving;
                installed = true;
            }
        }
    }

    /// <summary>Called when the module is removed. The context stays: the engine cannot be unloaded.</summary>
    internal static void Uninstall()
    {
        lock (Gate)
        {
            if (installed)
            {
                AssemblyLoadContext.Default.Resolving -= OnDefaultContextResolving;
                installed = false;
            }
        }
    }

    private static Assembly? OnDefaultContextResolving(AssemblyLoadContext defaultContext, AssemblyName name)
    {
        // Answer only for the engine: every other name belongs to someone else (PowerShell, other
        // modules), and the engine's dependencies are resolved by our context, not through here.
        if (!string.Equals(name.Name, EngineAssemblyName, StringComparison.Ordinal))
        {
            return null;
        }

        // Load by path rather than by name so a missing file returns null instead of falling back to
        // the default context, which would raise this event again.
        var path = Context.PathOf(name);
        return path is null ? null : Context.LoadFromAssemblyPath(path);
    }
}
