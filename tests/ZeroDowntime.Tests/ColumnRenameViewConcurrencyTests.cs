using System.Diagnostics;
using Npgsql;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// A rollout as it happens: the old application version (old column name, original search_path)
/// and the new one (new name, version schema first in search_path) run at the same time through
/// expand, then the old one stops and the contract runs under the new one, whose prepared
/// statements are held across it. Neither may see a single error.
/// </summary>
public class ColumnRenameViewConcurrencyTests : IClassFixture<TestDatabase>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private readonly TestDatabase _db;

    public ColumnRenameViewConcurrencyTests(TestDatabase db)
    {
        _db = db;
    }

    /// <summary>One application version's workload loop: counts rounds and keeps every error.</summary>
    private sealed class AppVersion
    {
        private readonly List<string> _errors = new();
        private int _rounds;

        public int Rounds => Volatile.Read(ref _rounds);

        public IReadOnlyList<string> Errors
        {
            get
            {
                lock (_errors)
                {
                    return _errors.ToList();
                }
            }
        }

        public async Task RunAsync(Func<int, Task> round, CancellationToken stop)
        {
            var watch = Stopwatch.StartNew();
            for (var n = 0; !stop.IsCancellationRequested && watch.Elapsed < Bound; n++)
            {
                try
                {
                    await round(n);
                    Interlocked.Increment(ref _rounds);
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
                {
                    lock (_errors)
                    {
                        _errors.Add($"round {n}: {e.Message}");
                    }
                }
            }
        }

        public async Task WaitForRoundsAsync(int more)
        {
            var target = Rounds + more;
            var watch = Stopwatch.StartNew();
            while (Rounds < target && watch.Elapsed < Bound)
            {
                await Task.Delay(10);
            }
        }
    }

    [Fact]
    public async Task Old_and_new_versions_run_side_by_side_through_expand_and_the_new_one_straight_through_contract()
    {
        await _db.ExecuteAsync("""
            CREATE TABLE accounts (
                id bigserial PRIMARY KEY,
                email text NOT NULL UNIQUE,
                visits int NOT NULL DEFAULT 0,
                created_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO accounts (email) SELECT 'seed-' || g || '@x' FROM generate_series(1, 1000) g;
            """);
        var engine = Engines.For(_db);
        using var stopOld = new CancellationTokenSource();
        using var stopNew = new CancellationTokenSource();

        // v1: the original name on the original search_path, through every kind of statement.
        var v1 = new AppVersion();
        await using var v1Connection = await _db.OpenAsync();
        var v1Task = Task.Run(() => v1.RunAsync(
            async n =>
            {
                var email = $"v1-{n}@x";
                var id = await v1Connection.ScalarAsync<long>("INSERT INTO accounts (email) VALUES ($1) RETURNING id", email);
                await v1Connection.ExecuteAsync("UPDATE accounts SET visits = visits + 1 WHERE email = $1", email);
                Check(await v1Connection.ScalarAsync<string>("SELECT email FROM accounts WHERE id = $1", id) == email, "v1 read back");
                await v1Connection.ExecuteAsync("INSERT INTO accounts (email) VALUES ($1) ON CONFLICT (email) DO UPDATE SET visits = accounts.visits + 1", email);
                if (n % 2 == 0)
                {
                    Check(await v1Connection.ExecuteAsync("DELETE FROM accounts WHERE email = $1", email) == 1, "v1 delete");
                }
            },
            stopOld.Token));
        await v1.WaitForRoundsAsync(20);

        var migration = await engine.RenameColumnByViewAsync("accounts", "email", "login", "release_2");
        Assert.Equal(MigrationPhase.Expanded, migration.Phase);

        // v2 deploys after the expand: the new name, the version schema first in its search_path,
        // and statements prepared once and used for the rest of its life (across the contract).
        var v2 = new AppVersion();
        await using var v2Connection = await _db.OpenWithSearchPathAsync(migration.Details["SearchPath"]);
        await using var insert = new NpgsqlCommand("INSERT INTO accounts (login) VALUES ($1) RETURNING id, login, visits", v2Connection);
        insert.Parameters.Add(new NpgsqlParameter { Value = "" });
        await insert.PrepareAsync();
        await using var read = new NpgsqlCommand("SELECT login, visits FROM accounts WHERE id = $1", v2Connection);
        read.Parameters.Add(new NpgsqlParameter { Value = 0L });
        await read.PrepareAsync();
        await v2Connection.ExecuteAsync("PREPARE v2_bump(text) AS UPDATE accounts SET visits = visits + 1 WHERE login = $1 RETURNING visits");
        var v2Task = Task.Run(() => v2.RunAsync(
            async n =>
            {
                var login = $"v2-{n}@x";
                insert.Parameters[0].Value = login;
                long id;
                await using (var reader = await insert.ExecuteReaderAsync())
                {
                    Check(await reader.ReadAsync(), "v2 insert returned a row");
                    id = reader.GetInt64(0);
                    Check(reader.GetString(1) == login && reader.GetInt32(2) == 0, "v2 insert defaults");
                }

                Check(await v2Connection.ScalarAsync<int>($"EXECUTE v2_bump('{login}')") == 1, "v2 prepared update");
                read.Parameters[0].Value = id;
                await using (var reader = await read.ExecuteReaderAsync())
                {
                    Check(await reader.ReadAsync() && reader.GetString(0) == login && reader.GetInt32(1) == 1, "v2 prepared read");
                }

                Check(await v2Connection.ScalarAsync<int>("INSERT INTO accounts (login) VALUES ($1) ON CONFLICT (login) DO UPDATE SET visits = accounts.visits + 1 RETURNING visits", login) == 2, "v2 upsert");
                if (n % 2 == 1)
                {
                    Check(await v2Connection.ExecuteAsync("DELETE FROM accounts WHERE login = $1", login) == 1, "v2 delete");
                }
            },
            stopNew.Token));

        // Both versions side by side for a while.
        await v2.WaitForRoundsAsync(30);
        await v1.WaitForRoundsAsync(30);

        // The old version is retired before the contract, as in a real rollout; the new one keeps going.
        await stopOld.CancelAsync();
        await v1Task;
        var roundsBeforeContract = v2.Rounds;
        var completed = await engine.CompleteAsync(migration.Id);
        var roundsAtContract = v2.Rounds;
        await v2.WaitForRoundsAsync(30);
        await stopNew.CancelAsync();
        await v2Task;

        Assert.Empty(v1.Errors);
        Assert.Empty(v2.Errors);
        Assert.True(v1.Rounds >= 30, $"v1 ran {v1.Rounds} rounds");
        Assert.True(roundsBeforeContract >= 30, $"v2 ran {roundsBeforeContract} rounds before the contract");
        Assert.True(v2.Rounds >= roundsAtContract + 30, $"v2 ran {v2.Rounds - roundsAtContract} rounds after the contract");
        Assert.True(insert.IsPrepared && read.IsPrepared);
        Assert.Equal(MigrationPhase.Completed, completed.Phase);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = 'release_2'"));

        // Every write of both versions landed in the one table: v1 kept odd rounds, v2 even ones.
        var expected = 1000L + (v1.Rounds / 2) + ((v2.Rounds + 1) / 2);
        Assert.InRange(await _db.ScalarAsync<long>("SELECT count(login) FROM accounts"), expected - 1, expected + 1);
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"Unexpected result: {what}.");
        }
    }
}
