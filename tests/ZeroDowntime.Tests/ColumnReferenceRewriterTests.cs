using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Tests;

public class ColumnReferenceRewriterTests
{
    [Theory]
    [InlineData("CHECK ((qty > 0))", "qty", "quantity", "CHECK ((\"quantity\" > 0))")]
    [InlineData("CHECK ((qty > min_qty))", "qty", "quantity", "CHECK ((\"quantity\" > min_qty))")]
    [InlineData("CHECK ((address <> 'address'::text))", "address", "billing", "CHECK ((\"billing\" <> 'address'::text))")]
    [InlineData("CHECK ((\"Address\" <> ''::text))", "Address", "Billing", "CHECK ((\"Billing\" <> ''::text))")]
    [InlineData("CHECK ((\"Address\" <> address))", "address", "b", "CHECK ((\"Address\" <> \"b\"))")]
    [InlineData("CREATE INDEX i ON public.t USING btree (lower(email))", "email", "mail", "CREATE INDEX i ON public.t USING btree (lower(\"mail\"))")]
    [InlineData("CREATE INDEX i ON public.t USING btree (text) WHERE (text IS NOT NULL)", "text", "body", "CREATE INDEX i ON public.t USING btree (\"body\") WHERE (\"body\" IS NOT NULL)")]
    [InlineData("CHECK ((x)::text <> 'x')", "text", "body", "CHECK ((x)::text <> 'x')")]
    [InlineData("CHECK ((lower(lower) = lower))", "lower", "l2", "CHECK ((lower(\"l2\") = \"l2\"))")]
    [InlineData("CHECK ((s.status = E'it\\'s status'))", "status", "state", "CHECK ((s.status = E'it\\'s status'))")]
    [InlineData("CHECK ((status = $$status$$))", "status", "state", "CHECK ((\"state\" = $$status$$))")]
    [InlineData("FOREIGN KEY (customer_id) REFERENCES customers(id)", "customer_id", "client_id", "FOREIGN KEY (\"client_id\") REFERENCES customers(id)")]
    [InlineData("UNIQUE (tenant, code) INCLUDE (code_2)", "code", "ref", "UNIQUE (tenant, \"ref\") INCLUDE (code_2)")]
    [InlineData("CHECK ((\"we\"\"ird\" > 0))", "we\"ird", "ok", "CHECK ((\"ok\" > 0))")]
    public void Renames_only_real_references_to_the_column(string sql, string oldName, string newName, string expected)
        => Assert.Equal(expected, ColumnReferenceRewriter.Rename(sql, oldName, newName));
}
