using System.Diagnostics.CodeAnalysis;
using System.Management.Automation;
using System.Runtime.CompilerServices;

namespace ZeroDowntime.PowerShell.Loading;

/// <summary>
/// Runs before any other code of this assembly executes, so the engine resolver is in place no
/// matter in which order PowerShell touches the cmdlet types (module import, auto-loading, Get-Help).
/// </summary>
internal static class AssemblyStartup
{
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries", Justification = "A PowerShell binary module must install its assembly resolver before any cmdlet type is used; there is no application entry point to do it from.")]
    internal static void InstallEngineResolver() => EngineAssemblyResolver.Install();
}

/// <summary>
/// PowerShell calls OnImport on every Import-Module, including a re-import after Remove-Module,
/// when the module initializer does not run again (the assembly stays loaded).
/// </summary>
public sealed class ModuleImportHook : IModuleAssemblyInitializer
{
    public void OnImport() => EngineAssemblyResolver.Install();
}

/// <summary>Removes the resolver when the module is removed (Remove-Module).</summary>
public sealed class ModuleRemoveHook : IModuleAssemblyCleanup
{
    public void OnRemove(PSModuleInfo psModuleInfo) => EngineAssemblyResolver.Uninstall();
}
