using Npgsql;
using ZeroDowntime.Engine.Operations;
using ZeroDowntime.Tests.Infrastructure;

namespace ZeroDowntime.Tests;

/// <summary>The search_path settings shown to the new application version are exact for each client.</summary>
public class SearchPathSettingTests : IClassFixture<TestDatabase>
{
    private readonly TestDatabase _db;

    public SearchPathSettingTests(TestDatabase db)
    {
        _db = db;
    }

    [Fact]
    public void Plain_names_are_written_as_they_are()
    {
        var setting = new SearchPathSetting(new[] { "zdt_v1", "public" });

        Assert.Equal("zdt_v1,public", setting.Value);
        Assert.Equal("options=-csearch_path=zdt_v1,public", setting.Libpq);
        Assert.Equal("Search Path=zdt_v1,public", setting.Npgsql);
        Assert.Equal("currentSchema=zdt_v1,public", setting.Jdbc);
        Assert.Equal("SET search_path = zdt_v1, public", setting.Sql);
    }

    [Fact]
    public void Names_that_need_quoting_are_quoted_and_escaped_for_each_client()
    {
        var setting = new SearchPathSetting(new[] { "Release 2", "my\"app" });

        Assert.Equal("\"Release 2\",\"my\"\"app\"", setting.Value);
        Assert.Equal("options='-csearch_path=\"Release\\\\ 2\",\"my\"\"app\"'", setting.Libpq);
        Assert.Equal("currentSchema=%22Release%202%22,%22my%22%22app%22", setting.Jdbc);
    }

    [Theory]
    [InlineData("Release 2", "public")]
    [InlineData("zdt_v1", "Mixed Case")]
    [InlineData("it's", "a\\b")]
    public async Task The_npgsql_setting_gives_the_session_exactly_that_search_path(string version, string schema)
    {
        var setting = new SearchPathSetting(new[] { version, schema });
        var builder = new NpgsqlConnectionStringBuilder(_db.ConnectionString + ";" + setting.Npgsql) { Pooling = false };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT current_setting('search_path')", connection);

        Assert.Equal(setting.Value, (string?)await cmd.ExecuteScalarAsync());
    }

    [Theory]
    [InlineData("Release 2", "public")]
    [InlineData("it's", "a\\b")]
    public async Task The_libpq_setting_gives_the_session_exactly_that_search_path(string version, string schema)
    {
        // Npgsql parses libpq's options the way the server does (-c name=value, backslash escapes).
        var setting = new SearchPathSetting(new[] { version, schema });
        var options = LibpqValue(setting.Libpq["options=".Length..]);
        var builder = new NpgsqlConnectionStringBuilder(_db.ConnectionString) { Options = options, Pooling = false };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT current_setting('search_path')", connection);

        Assert.Equal(setting.Value, (string?)await cmd.ExecuteScalarAsync());
    }

    /// <summary>Reads one libpq conninfo value: bare, or single-quoted with backslash escapes.</summary>
    private static string LibpqValue(string text)
    {
        if (!text.StartsWith('\''))
        {
            return text;
        }

        var value = new System.Text.StringBuilder();
        for (var i = 1; i < text.Length - 1; i++)
        {
            value.Append(text[i] == '\\' ? text[++i] : text[i]);
        }

        return value.ToString();
    }
}
