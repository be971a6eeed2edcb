using System.Data.Common;

namespace ZeroDowntime.Engine.Connections;

/// <summary>Reads an Npgsql keyword connection string (<c>Host=..;Username=..</c>).</summary>
internal static class KeywordConnectionString
{
    public static void Parse(string connectionString, ConnectionSettings settings)
    {
        // Split into pairs with the generic builder first, then hand each pair to Npgsql, so that
        // an error can name the offending keyword without quoting its value. Npgsql's own messages
        // (and their inner exceptions) may quote the value, and for a misspelled "Pasword=" that
        // value is the password we would otherwise have masked.
        var pairs = new DbConnectionStringBuilder();
        try
        {
            pairs.ConnectionString = connectionString;
        }
        catch (ArgumentException e)
        {
            throw settings.Invalid($"The connection string is neither a postgresql:// URI nor in 'Keyword=value;...' form: {e.Message}");
        }

        foreach (string keyword in pairs.Keys)
        {
            if (!settings.Builder.ContainsKey(keyword))
            {
                throw settings.Invalid($"The connection string has an unknown keyword {ConnectionErrors.Quote(keyword)}.");
            }

            try
            {
                settings.Builder[keyword] = pairs[keyword];
            }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException or InvalidCastException)
            {
                throw settings.Invalid($"The connection string has an invalid value for {ConnectionErrors.Quote(keyword)}.");
            }
        }
    }
}
