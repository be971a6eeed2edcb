using System.Net;
using System.Net.Sockets;
using Npgsql;
using Xunit;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Errors;

namespace ZeroDowntime.Tests;

public class ConnectionTargetTests
{
    const string Secret = "s3cr3t-Pw!";

    // Tests must not depend on the PG* variables of whoever runs them.
    static readonly Func<string, string?> NoEnvironment = _ => null;

    static Func<string, string?> FakeEnvironment(params (string Name, string Value)[] variables)
    {
        var values = variables.ToDictionary(variable => variable.Name, variable => variable.Value);
        return name => values.GetValueOrDefault(name);
    }

    static ConnectionTarget Resolve(string? connectionString, string? userName = null, string? password = null)
        => ConnectionTarget.Resolve(connectionString, userName, password, NoEnvironment);

    static NpgsqlConnectionStringBuilder Settings(ConnectionTarget target) => target.CreateBuilder();

    static ZdtException InvalidConnectionString(string connectionString, Func<string, string?>? environment = null)
    {
        var error = Assert.Throws<ZdtException>(() => ConnectionTarget.Resolve(connectionString, null, null, environment ?? NoEnvironment));
        Assert.Equal("InvalidConnectionString", error.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        return error;
    }

    static string ExpectedDefaultHost
        => !OperatingSystem.IsWindows() && Directory.Exists("/var/run/postgresql") ? "/var/run/postgresql" : "localhost";

    // ---- keyword form ----

    [Fact]
    public void Keyword_form_is_read()
    {
        var target = Resolve($"Host=db.example.com;Port=5433;Username=app;Password={Secret};Database=shop");

        Assert.Equal("db.example.com", target.Host);
        Assert.Equal(5433, target.Port);
        Assert.Equal("app", target.Username);
        Assert.Equal("shop", target.Database);
        Assert.True(target.HasPassword);
        Assert.Equal("app@db.example.com:5433/shop", target.ToString());
        Assert.Equal(Secret, Settings(target).Password);
    }

    [Fact]
    public void Keyword_form_accepts_npgsql_aliases()
    {
        var target = Resolve("Server=db1;User Id=app;DB=shop");

        Assert.Equal("db1", target.Host);
        Assert.Equal("app", target.Username);
        Assert.Equal("shop", target.Database);
        Assert.False(target.HasPassword);
    }

    [Fact]
    public void Keyword_form_keeps_npgsql_multi_host_syntax()
    {
        var target = Resolve("Host=h1:5433,h2;Port=6000;Username=app;Database=shop");

        Assert.Equal("h1:5433,h2", target.Host);
        Assert.Equal("app@h1:5433,h2:6000/shop", target.ToString());
    }

    // ---- URI form ----

    [Fact]
    public void Uri_with_user_password_host_port_and_database()
    {
        var target = Resolve("postgresql://app:s3cr3t-Pw%21@db.example.com:5433/shop");

        Assert.Equal("db.example.com", target.Host);
        Assert.Equal(5433, target.Port);
        Assert.Equal("app", target.Username);
        Assert.Equal("shop", target.Database);
        Assert.Equal(Secret, Settings(target).Password);
    }

    [Fact]
    public void Uri_percent_decodes_every_component()
    {
        var target = Resolve("postgres://d%C3%A9v%40corp:p%40ss%2Fw%3Ard%3F@db:5432/my%20db");

        Assert.Equal("dév@corp", target.Username);
        Assert.Equal("p@ss/w:rd?", Settings(target).Password);
        Assert.Equal("my db", target.Database);
    }

    [Fact]
    public void Uri_scheme_is_case_insensitive_and_postgres_is_accepted()
    {
        Assert.Equal("db", Resolve("PostgreSQL://app@db/shop").Host);
        Assert.Equal("db", Resolve("postgres://app@db/shop").Host);
    }

    [Fact]
    public void Uri_host_may_be_a_percent_encoded_socket_directory()
    {
        var target = Resolve("postgresql://app@%2Fvar%2Frun%2Fpostgresql:5433/shop");

        Assert.Equal("/var/run/postgresql", target.Host);
        Assert.Equal(5433, target.Port);
        Assert.Equal("app@/var/run/postgresql:5433/shop", target.ToString());
    }

    [Fact]
    public void Uri_host_may_be_given_as_a_query_parameter()
    {
        var target = Resolve("postgresql:///shop?host=/var/run/postgresql&port=5433&user=app");

        Assert.Equal("/var/run/postgresql", target.Host);
        Assert.Equal(5433, target.Port);
        Assert.Equal("app", target.Username);
        Assert.Equal("shop", target.Database);
    }

    [Fact]
    public void Uri_query_parameters_override_the_hierarchical_part()
    {
        var target = Resolve("postgresql://app@ignored:1111/ignored?host=db&port=2222&dbname=shop");

        Assert.Equal("db", target.Host);
        Assert.Equal(2222, target.Port);
        Assert.Equal("shop", target.Database);
    }

    [Fact]
    public void Uri_with_several_hosts_keeps_each_hosts_port()
    {
        var target = Resolve("postgresql://app@h1:5433,h2,h3:5434/shop");

        Assert.Equal("h1:5433,h2,h3:5434", target.Host);
        Assert.Equal(5432, target.Port);
        Assert.Equal("app@h1:5433,h2:5432,h3:5434/shop", target.ToString());
    }

    [Fact]
    public void Uri_with_several_hosts_on_one_port()
    {
        var target = Resolve("postgresql://app@h1:6000,h2:6000/shop");

        Assert.Equal("h1,h2", target.Host);
        Assert.Equal(6000, target.Port);
    }

    [Fact]
    public void Uri_with_one_port_parameter_applies_it_to_every_host()
    {
        var target = Resolve("postgresql://app@/shop?host=h1,h2&port=6000");

        Assert.Equal("h1,h2", target.Host);
        Assert.Equal(6000, target.Port);
    }

    [Fact]
    public void Uri_with_an_ipv6_host()
    {
        var target = Resolve("postgresql://app@[::1]:5433/shop");

        Assert.Equal("::1", target.Host);
        Assert.Equal(5433, target.Port);
        Assert.Equal("app@[::1]:5433/shop", target.ToString());
    }

    [Fact]
    public void Uri_with_an_ipv6_host_among_several_keeps_the_brackets()
    {
        var target = Resolve("postgresql://app@[2001:db8::5]:5433,[::1]/shop");

        Assert.Equal("[2001:db8::5]:5433,[::1]", target.Host);
        Assert.Equal("app@[2001:db8::5]:5433,[::1]:5432/shop", target.ToString());
    }

    [Theory]
    [InlineData("disable", SslMode.Disable)]
    [InlineData("allow", SslMode.Allow)]
    [InlineData("prefer", SslMode.Prefer)]
    [InlineData("require", SslMode.Require)]
    [InlineData("verify-ca", SslMode.VerifyCA)]
    [InlineData("verify-full", SslMode.VerifyFull)]
    public void Uri_sslmode_maps_to_npgsql(string libpqMode, SslMode expected)
        => Assert.Equal(expected, Settings(Resolve($"postgresql://app@db/shop?sslmode={libpqMode}")).SslMode);

    [Fact]
    public void Uri_maps_the_other_libpq_parameters()
    {
        var target = Resolve(
            "postgresql://app@h1,h2/shop?application_name=nightly%20deploy&connect_timeout=7&options=-c%20lock_timeout%3D5s"
            + "&target_session_attrs=read-write&sslrootcert=%2Fetc%2Fca.pem&sslcert=c.pem&sslkey=k.pem&passfile=%2Fhome%2Fapp%2F.pgpass");
        var settings = Settings(target);

        Assert.Equal("nightly deploy", settings.ApplicationName);
        Assert.Equal(7, settings.Timeout);
        Assert.Equal("-c lock_timeout=5s", settings.Options);
        Assert.Equal("read-write", settings.TargetSessionAttributes);
        Assert.Equal("/etc/ca.pem", settings.RootCertificate);
        Assert.Equal("c.pem", settings.SslCertificate);
        Assert.Equal("k.pem", settings.SslKey);
        Assert.Equal("/home/app/.pgpass", settings.Passfile);
    }

    [Fact]
    public void Uri_fallback_application_name_is_used_only_without_application_name()
    {
        Assert.Equal("etl", Settings(Resolve("postgresql://app@db/shop?fallback_application_name=etl")).ApplicationName);
        Assert.Equal("cli", Settings(Resolve("postgresql://app@db/shop?fallback_application_name=etl&application_name=cli")).ApplicationName);
    }

    [Fact]
    public void Uri_unknown_parameter_is_an_error_naming_the_parameter_but_not_the_value()
    {
        var error = InvalidConnectionString($"postgresql://app:{Secret}@db/shop?pasword={Secret}");

        Assert.Contains("'pasword'", error.Message);
        Assert.DoesNotContain(Secret, error.Message);
    }

    [Fact]
    public void Uri_invalid_sslmode_is_an_error_that_says_what_is_valid()
    {
        var error = InvalidConnectionString("postgresql://app@db/shop?sslmode=sometimes");

        Assert.Contains("sslmode", error.Message);
        Assert.Contains("verify-full", error.Message);
    }

    [Theory]
    [InlineData("postgresql://app@db:notaport/shop")]
    [InlineData("postgresql://app@db:70000/shop")]
    [InlineData("postgresql://app@db/shop?port=-1")]
    [InlineData("postgresql://app@h1:1,h2:2,h3:3/shop?port=1,2")]
    [InlineData("postgresql://app@[::1/shop")]
    [InlineData("postgresql://app@db/shop?sslmode")]
    [InlineData("postgresql://app@db/shop?connect_timeout=soon")]
    [InlineData("postgresql://app@db/shop?target_session_attrs=primary")]
    public void Uri_errors(string uri) => InvalidConnectionString(uri);

    // ---- environment fallback ----

    [Fact]
    public void Environment_supplies_everything_when_there_is_no_connection_string()
    {
        var environment = FakeEnvironment(
            ("PGHOST", "envhost"), ("PGPORT", "6543"), ("PGDATABASE", "envdb"), ("PGUSER", "envuser"),
            ("PGPASSWORD", Secret), ("PGPASSFILE", "/tmp/pgpass"), ("PGAPPNAME", "envapp"),
            ("PGSSLMODE", "verify-full"), ("PGCONNECT_TIMEOUT", "9"), ("PGOPTIONS", "-c statement_timeout=0"));

        var target = ConnectionTarget.Resolve(null, environment: environment);
        var settings = Settings(target);

        Assert.Equal("envhost", target.Host);
        Assert.Equal(6543, target.Port);
        Assert.Equal("envdb", target.Database);
        Assert.Equal("envuser", target.Username);
        Assert.True(target.HasPassword);
        Assert.Equal(Secret, settings.Password);
        Assert.Equal("/tmp/pgpass", settings.Passfile);
        Assert.Equal("envapp", settings.ApplicationName);
        Assert.Equal(SslMode.VerifyFull, settings.SslMode);
        Assert.Equal(9, settings.Timeout);
        Assert.Equal("-c statement_timeout=0", settings.Options);
    }

    [Fact]
    public void Environment_fills_only_what_the_connection_string_leaves_out()
    {
        var environment = FakeEnvironment(
            ("PGHOST", "envhost"), ("PGPORT", "6543"), ("PGDATABASE", "envdb"), ("PGUSER", "envuser"), ("PGSSLMODE", "disable"));

        var keyword = ConnectionTarget.Resolve("Host=db;Username=app;SSL Mode=Require", environment: environment);
        Assert.Equal("db", keyword.Host);
        Assert.Equal(6543, keyword.Port);
        Assert.Equal("app", keyword.Username);
        Assert.Equal("envdb", keyword.Database);
        Assert.Equal(SslMode.Require, Settings(keyword).SslMode);

        var uri = ConnectionTarget.Resolve("postgresql://:5555/shop", environment: environment);
        Assert.Equal("envhost", uri.Host);
        Assert.Equal(5555, uri.Port);
        Assert.Equal("envuser", uri.Username);
        Assert.Equal("shop", uri.Database);
        Assert.Equal(SslMode.Disable, Settings(uri).SslMode);
    }

    [Fact]
    public void Environment_host_and_port_lists_combine_like_libpq()
    {
        var target = ConnectionTarget.Resolve(
            "", environment: FakeEnvironment(("PGHOST", "h1,h2"), ("PGPORT", "5433,5434"), ("PGUSER", "app")));

        Assert.Equal("h1:5433,h2:5434", target.Host);
    }

    [Fact]
    public void Environment_values_are_validated()
    {
        var error = InvalidConnectionString("Host=db", FakeEnvironment(("PGSSLMODE", "maybe")));
        Assert.Contains("PGSSLMODE", error.Message);

        InvalidConnectionString("Host=db", FakeEnvironment(("PGPORT", "abc")));
    }

    // ---- credential override and defaults ----

    [Fact]
    public void Credential_overrides_user_and_password_from_every_other_source()
    {
        var target = ConnectionTarget.Resolve(
            "postgresql://app:old@db/shop", userName: "dba", password: Secret,
            environment: FakeEnvironment(("PGUSER", "envuser"), ("PGPASSWORD", "envpw")));

        Assert.Equal("dba", target.Username);
        Assert.Equal(Secret, Settings(target).Password);
        Assert.Equal("shop", target.Database);
    }

    [Fact]
    public void Credential_without_a_password_keeps_the_connection_strings_password()
    {
        var target = Resolve($"Host=db;Username=app;Password={Secret}", userName: "dba", password: "");

        Assert.Equal("dba", target.Username);
        Assert.Equal(Secret, Settings(target).Password);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("postgresql://")]
    public void Defaults_follow_libpq(string? connectionString)
    {
        var target = Resolve(connectionString);
        var settings = Settings(target);

        Assert.Equal(ExpectedDefaultHost, target.Host);
        Assert.Equal(5432, target.Port);
        Assert.Equal(System.Environment.UserName, target.Username);
        Assert.Equal(target.Username, target.Database);
        Assert.False(target.HasPassword);
        Assert.Equal("ZeroDowntime", settings.ApplicationName);
        Assert.True(settings.Pooling);
    }

    [Fact]
    public void Database_defaults_to_the_credentials_user()
    {
        var target = Resolve("Host=db", userName: "dba", password: Secret);

        Assert.Equal("dba", target.Database);
    }

    [Fact]
    public void Users_application_name_is_kept()
        => Assert.Equal("deploy", Settings(Resolve("Host=db;Application Name=deploy")).ApplicationName);

    // ---- the password never leaks ----

    public static TheoryData<string?, string?, string?> PasswordSources => new()
    {
        { $"Host=db;Username=app;Password={Secret};Database=shop", null, null },
        { "postgresql://app:s3cr3t-Pw%21@db:5433/shop?sslmode=require", null, null },
        { "postgresql://app@h1,h2/shop?sslpassword=s3cr3t-Pw%21", null, null },
        { "Host=db", "app", Secret },
        { null, null, null }, // PGPASSWORD, below
    };

    [Theory]
    [MemberData(nameof(PasswordSources))]
    public void Password_never_appears_in_any_public_property_or_ToString(string? connectionString, string? userName, string? password)
    {
        var target = ConnectionTarget.Resolve(connectionString, userName, password, FakeEnvironment(("PGPASSWORD", Secret)));

        foreach (var property in typeof(ConnectionTarget).GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Static))
        {
            var value = Convert.ToString(property.GetValue(property.GetMethod!.IsStatic ? null : target), System.Globalization.CultureInfo.InvariantCulture) ?? "";
            Assert.DoesNotContain(Secret, value);
            Assert.DoesNotContain(Uri.EscapeDataString(Secret), value);
        }
        Assert.DoesNotContain(Secret, target.ToString());
        Assert.DoesNotContain("Password", target.SafeConnectionString, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Safe_connection_string_keeps_everything_but_the_password()
    {
        var target = Resolve($"Host=db;Port=5433;Username=app;Password={Secret};Database=shop;Timeout=3");
        var safe = new NpgsqlConnectionStringBuilder(target.SafeConnectionString);

        Assert.Null(safe.Password);
        Assert.Equal("db", safe.Host);
        Assert.Equal(5433, safe.Port);
        Assert.Equal("app", safe.Username);
        Assert.Equal("shop", safe.Database);
        Assert.Equal(3, safe.Timeout);
        Assert.Equal("ZeroDowntime", safe.ApplicationName);
    }

    [Theory]
    [InlineData($"Host=db;Pasword={Secret}")]
    [InlineData($"Host=db;Password={Secret};Port=notaport")]
    [InlineData($"Host=db;Password={Secret};Port={Secret}")]
    [InlineData($"Password={Secret};Host='unterminated")]
    [InlineData($"Host=db;Password={Secret};SSL Mode={Secret}")]
    [InlineData($"Host=db;Password={Secret};Timeout=5000")]
    [InlineData($"postgresql://app:{Secret}@db/shop?port={Secret}")]
    [InlineData($"postgresql://app:{Secret}@db/shop?connect_timeout=x&x={Secret}")]
    [InlineData($"postgresql://app:{Secret}@db/shop?password={Secret}&sslmode=nope")]
    [InlineData($"postgresql://app:{Secret}@db/shop?sslpassword={Secret}&target_session_attrs=standby")]
    public void Invalid_connection_string_errors_never_contain_the_password(string connectionString)
    {
        var error = InvalidConnectionString(connectionString);

        Assert.DoesNotContain(Secret, error.Message);
        Assert.DoesNotContain(Secret, error.ToString());
    }

    [Fact]
    public void Misspelled_keyword_is_named_without_its_value()
    {
        var error = InvalidConnectionString($"Host=db;Pasword={Secret}");

        Assert.Contains("pasword", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Secret, error.Message);
    }

    [Fact]
    public void Unencoded_question_mark_in_a_uri_password_does_not_leak_its_tail()
    {
        var error = InvalidConnectionString("postgresql://app:first?half@db/shop");

        Assert.DoesNotContain("half", error.Message);
    }

    [Fact]
    public void Credential_password_is_scrubbed_from_parse_errors()
    {
        var error = Assert.Throws<ZdtException>(() =>
            ConnectionTarget.Resolve($"postgresql://app@db/shop?sslmode={Secret}", "app", Secret, NoEnvironment));

        Assert.DoesNotContain(Secret, error.Message);
    }

    // ---- Scrub ----

    [Fact]
    public void Scrub_masks_the_password_and_its_percent_encoded_forms()
    {
        var target = Resolve("postgresql://app:p%40ss%2Fword@db/shop");

        Assert.Equal("a ******** b ******** c ********", target.Scrub("a p@ss/word b p%40ss%2Fword c p%40ss%2fword"));
    }

    [Fact]
    public void Scrub_masks_the_ssl_key_password_too()
        => Assert.Equal("x ********", Resolve("postgresql://app@db/shop?sslpassword=keypw").Scrub("x keypw"));

    [Fact]
    public void Scrub_leaves_text_alone_without_a_password()
        => Assert.Equal("nothing p@ss here", Resolve("Host=db;Username=app").Scrub("nothing p@ss here"));

    // ---- internal helpers for the engine ----

    [Fact]
    public void WithDatabase_changes_only_the_database()
    {
        var target = Resolve($"Host=db;Port=5433;Username=app;Password={Secret};Database=shop");
        var other = target.WithDatabase("postgres");

        Assert.Equal("postgres", other.Database);
        Assert.Equal("db", other.Host);
        Assert.Equal(5433, other.Port);
        Assert.Equal("app", other.Username);
        Assert.Equal(Secret, other.CreateBuilder().Password);
        Assert.Equal("shop", target.Database);
    }

    [Fact]
    public void CreateBuilder_returns_a_fresh_builder_each_time()
    {
        var target = Resolve($"Host=db;Password={Secret}");
        target.CreateBuilder().Password = "changed";

        Assert.Equal(Secret, target.CreateBuilder().Password);
    }

    [Fact]
    public void Targets_with_the_same_settings_share_a_data_source()
    {
        var first = Resolve($"Host=db-share-test;Username=app;Password={Secret}");
        var second = Resolve($"postgresql://app:s3cr3t-Pw%21@db-share-test/app");
        var otherPassword = Resolve("Host=db-share-test;Username=app;Password=different");

        Assert.Same(first.DataSource, second.DataSource);
        Assert.Same(first.DataSource, first.DataSource);
        Assert.NotSame(first.DataSource, otherPassword.DataSource);
    }

    [Fact]
    public void Data_source_is_created_once_under_concurrent_use()
    {
        var target = Resolve("Host=db-concurrency-test;Username=app");
        var sources = new NpgsqlDataSource[32];

        Parallel.For(0, sources.Length, index => sources[index] = target.DataSource);

        Assert.All(sources, source => Assert.Same(sources[0], source));
    }

    [Fact]
    public async Task Opening_a_closed_port_fails_with_ConnectionFailed_and_no_password()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var target = Resolve($"Host=127.0.0.1;Port={port};Username=app;Password={Secret};Database=shop;Timeout=5");

        var error = await Assert.ThrowsAsync<ZdtException>(() => target.OpenAsync(CancellationToken.None));

        Assert.Equal("ConnectionFailed", error.ErrorId);
        Assert.Equal(ErrorKind.ConnectionError, error.Kind);
        Assert.Contains($"127.0.0.1:{port}", error.Message);
        Assert.DoesNotContain(Secret, error.Message);
    }
}
