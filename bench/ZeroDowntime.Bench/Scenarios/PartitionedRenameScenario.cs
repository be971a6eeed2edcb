using System.Diagnostics;
using System.Globalization;
using System.Text;
using ZeroDowntime.Bench.Output;
using ZeroDowntime.Bench.Phases;
using ZeroDowntime.Bench.Reporting;
using ZeroDowntime.Bench.Server;
using ZeroDowntime.Bench.Workload;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Backfill;
using ZeroDowntime.Engine.Planning;
using static ZeroDowntime.Engine.Sql.Ident;

namespace ZeroDowntime.Bench.Scenarios;

/// <summary>
/// One phase of the rename of the partitioned table as measured: its ACCESS EXCLUSIVE steps (on
/// the parent and every partition, or on one partition or one partition's index), the longest
/// hold and on what step, the lock holders injected, and what the application saw.
/// </summary>
public sealed record PartitionedPhase(
    string Name,
    double Seconds,
    int AccessExclusiveSteps,
    double MaxAccessExclusiveMs,
    string? LongestAccessExclusiveStep,
    int LockInjections,
    int LockRetries,
    double AppMaxWaitMs,
    double AppP99Ms,
    long AppErrors);

/// <summary>The partitioned scenario's figures.</summary>
public sealed record PartitionedResult(
    long Rows,
    int Partitions,
    WindowStats Baseline,
    IReadOnlyList<PartitionedPhase> Phases,
    double SyncTriggerStepMs,
    long RowsBackfilled,
    double BackfillSeconds,
    double BackfillRowsPerSecond,
    double UpdateSeconds,
    double UpdateRowsPerSecond,
    long ParityMismatches,
    double LockTimeoutMs,
    double LockHoldSeconds);

/// <summary>
/// The issue's partitioned bench (issue 13): a copy rename of <c>address</c> on an orders table
/// range-partitioned by <c>created_at</c> into N partitions of 30 days plus a default partition
/// (which takes the application's inserts), while the application runs through every phase: v1
/// alone for the baseline and the expand, v1 and v2 sharing the traffic through the backfill and
/// the parity check (a rollout), v2 alone for the contract. A lock holder (ACCESS SHARE for
/// LockHold) is injected in front of every ACCESS EXCLUSIVE step: the column's on the parent and
/// all partitions, each partition index's attach, each partition's NOT VALID check, the swap.
/// Per phase: the longest ACCESS EXCLUSIVE hold (target &lt; 50 ms), the application's longest
/// wait and errors; the backfill's rate under load against one UPDATE of the parent of a twin
/// (expanded the same way, no load) in the same run. Writes bench/results/partitioned-rows-N.md
/// and .json of its own.
/// </summary>
public sealed class PartitionedRenameScenario
{
    /// <summary>Each partition holds 30 days of created_at; the rows are spread evenly over them.</summary>
    private const int DaysPerPartition = 30;

    private const long RowsPerInsert = 1_000_000;

    private readonly BenchContext _ctx;
    private readonly long _rows;
    private readonly int _partitions;
    private readonly WorkloadOptions _workload;
    private readonly TimeSpan _window;
    private readonly ResultsPlace _results;

    public PartitionedRenameScenario(BenchContext ctx, long rows, int partitions, WorkloadOptions workload, TimeSpan window, ResultsPlace results)
    {
        _ctx = ctx;
        _rows = rows;
        _partitions = partitions;
        _workload = workload with { IdRange = rows };
        _window = window;
        _results = results;
    }

    private ConsoleUi Ui => _ctx.Ui;

    public async Task<PartitionedResult> RunAsync()
    {
        var ct = _ctx.Cancellation;
        Ui.Line($"== Partitioned table: copy rename of {OrdersTable.OldColumn} on {Fmt.Count(_rows)} rows in {_partitions} partitions + a default one; application {_workload.Describe()} ==");
        var name = "p_" + RenameUnderLoadScenario.TableName(_rows);
        var table = await CreateAsync(name);
        var twin = await CreateAsync(name + "_twin");
        var recorder = new WorkloadRecorder();
        var runner = _ctx.Phases(recorder);
        var phases = new List<PartitionedPhase>();
        var rate = _workload.Rate;
        var v1 = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("v1", table.Qualified, Quote(OrdersTable.OldColumn)), _workload, recorder);
        var running = new List<AppSimulator> { v1 };
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(3), ct); // connections, JIT, caches
            var baseline = await MeasureAsync(recorder, "baseline", _window);

            var expand = await RunPhaseAsync(runner, "column rename: expand", await _ctx.Engine.PlanColumnRenameAsync(new ColumnRenameRequest(table.Schema, table.Name, OrdersTable.OldColumn, OrdersTable.NewColumn), ct));
            phases.Add(expand.Phase);
            var syncTriggerMs = expand.Result.Steps.Where(s => s.Lock == LockLevel.ShareRowExclusive.ToSqlName()).Select(s => s.LockHeldMs).DefaultIfEmpty(0).Max();

            // The rollout: v2 takes half of the traffic (it shifts, it is not added).
            var v2 = AppSimulator.Start(_ctx.AppSource, new AppVersionSpec("v2", table.Qualified, Quote(OrdersTable.NewColumn)), _workload with { Seed = 7, Rate = rate / 2 }, recorder);
            running.Add(v2);
            if (rate is { } r)
            {
                v1.SetRate(r / 2);
            }

            // The backfill at the engine's defaults, under both versions; no VACUUM after it, so
            // its time compares with the one UPDATE's.
            var window = recorder.BeginWindow("backfill");
            var watch = Stopwatch.StartNew();
            var retriesBefore = _ctx.Observer.LockRetries;
            var backfilled = await _ctx.Engine.RunBackfillAsync(await _ctx.Engine.PlanBackfillAsync(expand.Migration.Id, vacuumAfter: false, ct), new BackfillOptions(), ct);
            var backfillSeconds = watch.Elapsed.TotalSeconds;
            phases.Add(Measured("backfill", backfillSeconds, window.End(), _ctx.Observer.LockRetries - retriesBefore));
            Ui.Line($"[backfill] {Fmt.Count(backfilled.RowsBackfilled)} rows in {Fmt.Seconds(backfillSeconds)}, partition by partition");

            window = recorder.BeginWindow("parity");
            watch.Restart();
            var parity = await _ctx.Engine.TestColumnParityAsync(expand.Migration.Id, ct);
            phases.Add(Measured("parity", watch.Elapsed.TotalSeconds, window.End(), 0));
            Ui.Line($"[parity] {Fmt.Count(parity.Mismatches)} mismatches in {Fmt.Count(parity.RowsChecked)} rows");

            // v1 is gone before its column is: v2 takes all the traffic.
            if (rate is { } all)
            {
                v2.SetRate(all);
            }

            await v1.StopAsync();
            running.Remove(v1);
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            var contract = await RunPhaseAsync(runner, "column rename: contract", await _ctx.Engine.PlanContractAsync(expand.Migration.Id, ct));
            phases.Add(contract.Phase);
            await v2.StopAsync();
            running.Remove(v2);

            // The fastest copy there is: one UPDATE of the parent of the twin, expanded the same
            // way (new column, sync trigger, index copy), without the application.
            var twinMigration = await _ctx.Engine.RunAsync(await _ctx.Engine.PlanColumnRenameAsync(new ColumnRenameRequest(twin.Schema, twin.Name, OrdersTable.OldColumn, OrdersTable.NewColumn), ct), ct);
            var update = Stopwatch.StartNew();
            var updated = await Sql.ExecuteCountAsync(_ctx.Admin, $"UPDATE {twin.Qualified} SET {Quote(OrdersTable.NewColumn)} = {Quote(OrdersTable.OldColumn)}", ct);
            var updateSeconds = update.Elapsed.TotalSeconds;
            await _ctx.Engine.RunAsync(await _ctx.Engine.PlanUndoAsync(twinMigration.Id, ct), ct);
            Ui.Line($"[one UPDATE of the twin's parent] {Fmt.Count(updated)} rows in {Fmt.Seconds(updateSeconds)}");

            var result = new PartitionedResult(
                _rows,
                _partitions,
                baseline,
                phases,
                syncTriggerMs,
                backfilled.RowsBackfilled,
                backfillSeconds,
                backfilled.RowsBackfilled / backfillSeconds,
                updateSeconds,
                updated / updateSeconds,
                parity.Mismatches,
                _ctx.EngineOptions.LockTimeout.TotalMilliseconds,
                _ctx.Options.LockHold.TotalSeconds);
            await WriteAsync(result);
            return result;
        }
        finally
        {
            foreach (var app in running)
            {
                await app.DisposeAsync();
            }

            await Sql.ExecuteAsync(_ctx.Admin, $"DROP TABLE IF EXISTS {table.Qualified}, {twin.Qualified} CASCADE", CancellationToken.None);
        }
    }

    /// <summary>
    /// The bench's orders table (OrdersTable's columns and rows), range-partitioned by created_at:
    /// the primary key is (id, created_at) (a partitioned table's unique keys include its
    /// partition key, so code is not unique here), the index on address is a partitioned index.
    /// </summary>
    private async Task<OrdersTable> CreateAsync(string name)
    {
        var ct = _ctx.Cancellation;
        var started = DateTime.UtcNow;
        var table = new OrdersTable(BenchServer.DataSchema, name, _rows);
        var q = table.Qualified;
        var span = (long)_partitions * DaysPerPartition * 86_400;
        var ddl = new StringBuilder($"""
            CREATE TABLE {q} (
                id bigint NOT NULL,
                code text NOT NULL,
                address text NOT NULL DEFAULT 'unknown',
                qty integer NOT NULL DEFAULT 1,
                created_at timestamptz NOT NULL DEFAULT now()) PARTITION BY RANGE (created_at);
            CREATE TABLE {Qualify(table.Schema, name + "_default")} PARTITION OF {q} DEFAULT;

            """);
        for (var i = 0; i < _partitions; i++)
        {
            ddl.AppendLine(CultureInfo.InvariantCulture, $"CREATE TABLE {Qualify(table.Schema, $"{name}_p{i:00}")} PARTITION OF {q} FOR VALUES FROM ({Start(i)}) TO ({Start(i + 1)});");
        }

        await Sql.ExecuteAsync(_ctx.Admin, ddl.ToString(), ct);
        long done = 0;
        await using (Ui.Status(() => $"creating {q}: {Fmt.Count(Interlocked.Read(ref done))} of {Fmt.Count(_rows)} rows loaded"))
        {
            for (long from = 1; from <= _rows; from += RowsPerInsert)
            {
                var to = Math.Min(_rows, from + RowsPerInsert - 1);
                await Sql.ExecuteAsync(_ctx.Admin, string.Create(CultureInfo.InvariantCulture, $"""
                    INSERT INTO {q} (id, code, address, qty, created_at)
                    SELECT g, 'C' || lpad(g::text, 10, '0'), g || ' Main Street, Springfield ' || (g % 997), 1 + g % 9,
                           timestamptz '2024-01-01 00:00:00+00' + ((g - 1) * {span} / {_rows}) * interval '1 second'
                    FROM generate_series({from}::bigint, {to}::bigint) AS g
                    """), ct);
                Interlocked.Exchange(ref done, to);
            }

            var sequence = Qualify(table.Schema, name + "_id_seq");
            await Sql.ExecuteAsync(_ctx.Admin, string.Create(CultureInfo.InvariantCulture, $"""
                SET maintenance_work_mem = '512MB';
                CREATE SEQUENCE {sequence} OWNED BY {q}.id;
                SELECT setval({Literal(sequence)}, {Math.Max(_rows, 1)});
                ALTER TABLE {q} ALTER COLUMN id SET DEFAULT nextval({Literal(sequence)});
                ALTER TABLE {q} ADD CONSTRAINT {Quote(name + "_pkey")} PRIMARY KEY (id, created_at);
                CREATE INDEX {Quote(name + "_address_idx")} ON {q} (address);
                RESET maintenance_work_mem
                """), ct);
            await Sql.ExecuteAsync(_ctx.Admin, $"VACUUM (ANALYZE) {q}", ct);
        }

        Ui.Line($"[setup] {q}: {Fmt.Count(_rows)} rows in {_partitions} partitions of {DaysPerPartition} days + a default one, with a primary key and an index on address, vacuumed ({Fmt.Seconds((DateTime.UtcNow - started).TotalSeconds)})");
        return table;

        static string Start(int partition) => string.Create(CultureInfo.InvariantCulture, $"'{new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).AddDays((double)partition * DaysPerPartition):yyyy-MM-dd HH:mm:ssK}'");
    }

    private async Task<WindowStats> MeasureAsync(WorkloadRecorder recorder, string name, TimeSpan length)
    {
        var window = recorder.BeginWindow(name);
        await Task.Delay(length, _ctx.Cancellation);
        var stats = window.End();
        Ui.Line($"[{name}] {Fmt.Count(stats.Tps)} tx/s, p99 {Fmt.Ms(stats.P99Ms)}, longest wait {Fmt.Ms(stats.MaxMs)}, {stats.Errors} errors");
        return stats;
    }

    /// <summary>A DDL phase with a lock holder in front of each of its ACCESS EXCLUSIVE steps.</summary>
    private async Task<(ZeroDowntime.Engine.Migration Migration, PhaseResult Result, PartitionedPhase Phase)> RunPhaseAsync(PhaseRunner runner, string name, PhasePlan plan)
    {
        var (migration, r) = await runner.RunAsync(name, _rows, plan, injectLocks: true, _ctx.Cancellation);
        var longest = r.Steps.Where(s => s.Lock == PhaseResult.AccessExclusive).OrderByDescending(s => s.LockHeldMs).FirstOrDefault();
        var phase = new PartitionedPhase(name, r.Seconds, r.AccessExclusiveSteps, r.MaxAccessExclusiveMs, longest?.Title, r.LockInjections, r.Attempts - r.Steps.Count, r.App!.MaxMs, r.App.P99Ms, r.App.Errors);
        Ui.Line($"[{name}] {Fmt.Seconds(r.Seconds)}, {r.Steps.Count} steps ({r.AccessExclusiveSteps} ACCESS EXCLUSIVE), {r.LockInjections} lock holder(s), {phase.LockRetries} lock retries; "
            + $"ACCESS EXCLUSIVE held at most {Fmt.Ms(r.MaxAccessExclusiveMs)}{(longest is null ? "" : $" ({longest.Title})")}; app longest wait {Fmt.Ms(r.App.MaxMs)}, {r.App.Errors} errors");
        return (migration, r, phase);
    }

    /// <summary>A phase without ACCESS EXCLUSIVE steps (backfill, parity): what the application saw.</summary>
    private PartitionedPhase Measured(string name, double seconds, WindowStats app, int lockRetries)
    {
        Ui.Line($"[{name}] {Fmt.Seconds(seconds)}; app {Fmt.Count(app.Tps)} tx/s, p99 {Fmt.Ms(app.P99Ms)}, longest wait {Fmt.Ms(app.MaxMs)}, {app.Errors} errors");
        return new PartitionedPhase(name, seconds, 0, 0, null, 0, lockRetries, app.MaxMs, app.P99Ms, app.Errors);
    }

    private async Task WriteAsync(PartitionedResult r)
    {
        var directory = _results.Directory;
        var name = _results.FileName("partitioned");
        var md = ResultsFiles.StartReport(
            string.Create(CultureInfo.InvariantCulture, $"Copy rename on a partitioned table under load: {r.Rows:N0} rows in {r.Partitions} range partitions + a default one"),
            string.Create(CultureInfo.InvariantCulture, $"on {_ctx.Server.Description}; application {_workload.Describe()} ({(_workload.Rate is null ? "closed loop: each version's connections flat out, as many statements as the server takes; v1 alone for the baseline and the expand, v1 and v2 (each with these connections) through the backfill and parity, v2 alone for the contract" : "v1 alone for the baseline and the expand, v1 and v2 sharing it through the backfill and parity, v2 alone for the contract")}); baseline {r.Baseline.Tps:N0} tx/s, p99 {r.Baseline.P99Ms:N1} ms, longest wait {r.Baseline.MaxMs:N1} ms. A session holding ACCESS SHARE for {r.LockHoldSeconds:N1} s is put in front of every ACCESS EXCLUSIVE step; lock_timeout {r.LockTimeoutMs:N0} ms. The machine is shared and noisy: figures as measured."),
            _results.Note);
        md.AppendLine("| phase | seconds | ACCESS EXCLUSIVE steps | ACCESS EXCLUSIVE held at most (ms) | longest-held step | lock holders | lock retries | application's longest wait (ms) | p99 (ms) | errors |");
        md.AppendLine("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
        foreach (var p in r.Phases)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {p.Name} | {p.Seconds:N1} | {p.AccessExclusiveSteps} | {p.MaxAccessExclusiveMs:N1} | {p.LongestAccessExclusiveStep ?? "-"} | {p.LockInjections} | {p.LockRetries} | {p.AppMaxWaitMs:N1} | {p.AppP99Ms:N1} | {p.AppErrors} |");
        }

        md.AppendLine();
        var maxHold = r.Phases.Max(p => p.MaxAccessExclusiveMs);
        var errors = r.Phases.Sum(p => p.AppErrors);
        md.AppendLine(CultureInfo.InvariantCulture, $"Target: every ACCESS EXCLUSIVE step (on the parent and its partitions, on one partition, or on one partition's index) held under 50 ms: **{(maxHold < 50 ? "met" : "not met")}** (longest {maxHold:N1} ms). Application errors: **{errors}** (target 0). Parity: {r.ParityMismatches:N0} mismatches.");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"The expand's sync trigger step (SHARE ROW EXCLUSIVE on the parent and every partition: reads go on, writes wait) held its locks {r.SyncTriggerStepMs:N1} ms.");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Backfill: {r.RowsBackfilled:N0} rows in {r.BackfillSeconds:N1} s, partition by partition at the engine's defaults under both versions' load: {r.BackfillRowsPerSecond:N0} rows/s, against one `UPDATE` of the parent of a twin expanded the same way (no load) at {r.UpdateRowsPerSecond:N0} rows/s ({r.UpdateSeconds:N1} s): **{r.BackfillRowsPerSecond / r.UpdateRowsPerSecond:N2} x**.");
        Ui.Line($"Wrote {await ResultsFiles.WriteScenarioAsync(directory, name, md.ToString(), r, _ctx.Cancellation)} and .json");
    }
}
