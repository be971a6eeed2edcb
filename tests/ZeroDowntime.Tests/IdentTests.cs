using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Tests;

public class IdentTests
{
    [Theory]
    [InlineData("orders", "\"orders\"")]
    [InlineData("Orders", "\"Orders\"")]
    [InlineData("order items", "\"order items\"")]
    [InlineData("select", "\"select\"")]
    [InlineData("we\"ird", "\"we\"\"ird\"")]
    public void Quote_always_double_quotes_and_doubles_embedded_quotes(string name, string expected)
        => Assert.Equal(expected, Ident.Quote(name));

    [Fact]
    public void Qualify_quotes_both_parts()
        => Assert.Equal("\"my schema\".\"T\"", Ident.Qualify("my schema", "T"));

    [Fact]
    public void A_name_longer_than_63_bytes_is_refused_not_truncated()
    {
        var error = Assert.Throws<ZdtException>(() => Ident.Quote(new string('a', 64)));
        Assert.Equal("IdentifierTooLong", error.ErrorId);
        Assert.Equal("\"" + new string('a', 63) + "\"", Ident.Quote(new string('a', 63)));
    }

    [Fact]
    public void Multibyte_names_are_measured_in_bytes()
        => Assert.Throws<ZdtException>(() => Ident.Quote(new string('é', 32)));

    [Theory]
    [InlineData("")]
    [InlineData("a\0b")]
    public void Empty_and_nul_names_are_refused(string name)
        => Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<ZdtException>(() => Ident.Quote(name)).Kind);

    [Fact]
    public void Literal_doubles_single_quotes_and_writes_a_backslash_as_an_escape_string()
        => Assert.Equal("E'it''s a \\\\ path'", Ident.Literal("it's a \\ path"));

    [Fact]
    public void Derived_names_stay_within_the_limit_and_differ_for_different_inputs()
    {
        var a = Ident.Derive("zdt_sync_", new string('x', 60), "a");
        var b = Ident.Derive("zdt_sync_", new string('x', 60), "b");
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(a) <= Ident.MaxBytes);
        Assert.NotEqual(a, b);
        Assert.Equal("zdt_sync_t_c", Ident.Derive("zdt_sync_", "t", "c"));
    }
}
