namespace ZeroDowntime.PowerShell;

/// <summary>
/// Where Get-Help -Online sends a user: docs/cmdlets.md in the repository, one section per cmdlet
/// (its anchor is the cmdlet's name in lower case). Every cmdlet's HelpUri is Base + its anchor.
/// </summary>
internal static class HelpLinks
{
    public const string Base = "https://github.com/zerodowntime/ZeroDowntime/blob/main/docs/cmdlets.md#";
}
