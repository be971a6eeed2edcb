using Npgsql;

namespace ZeroDowntime.Engine.Connections;

/// <summary>
/// Server settings every session of the module starts with, whatever the database, the role or
/// the user's own connection options say.
/// </summary>
/// <remarks>
/// They go in the startup packet's <c>options</c>, after the user's own, so they outrank
/// <c>ALTER DATABASE/ROLE ... SET</c> and an earlier <c>-c</c> of the same name, and they survive
/// the pool's <c>DISCARD ALL</c> (which returns to the startup values, where a SET on open would be
/// lost). The user's connection string is left as given: these are added only where the data
/// source is built, so <see cref="ConnectionTarget.SafeConnectionString"/> does not grow them.
/// </remarks>
internal static class SessionSettings
{
    /// <summary>
    /// With standard_conforming_strings off a backslash in a '...' literal escapes the next
    /// character. Literals are written so that they do not depend on it (<c>Ident.Literal</c>), and
    /// this makes the module's sessions read any literal the way the module wrote it.
    /// </summary>
    internal const string StartupOptions = "-c standard_conforming_strings=on";

    /// <summary>The connection string a data source is built from: the user's, with our options last.</summary>
    public static string Apply(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        builder.Options = string.IsNullOrWhiteSpace(builder.Options) ? StartupOptions : builder.Options + " " + StartupOptions;
        return builder.ConnectionString;
    }
}
