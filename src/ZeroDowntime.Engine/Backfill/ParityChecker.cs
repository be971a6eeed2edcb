using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using ZeroDowntime.Engine.Catalog;
using ZeroDowntime.Engine.Connections;
using ZeroDowntime.Engine.Observing;
using ZeroDowntime.Engine.Sql;

namespace ZeroDowntime.Engine.Backfill;

/// <summary>What a parity scan counted.</summary>
internal sealed record ParityCount(long RowsChecked, long Mismatches, IReadOnlyList<string> SampleKeys, TimeSpan Elapsed);

/// <summary>
/// Counts rows where two columns differ (IS DISTINCT FROM), walking the table in key ranges (or ctid
/// page ranges) of plain read-only statements, so a big table is checked with progress and without
/// one long-running snapshot holding back vacuum.
/// </summary>
internal sealed class ParityChecker
{
    private const int RowsPerBatch = 50_000;
    private const int PagesPerBatch = 1_000;
    private const int SampleSize = 10;

    private readonly ConnectionTarget _target;
    private readonly IMigrationObserver _observer;

    public ParityChecker(ConnectionTarget target, IMigrationObserver observer)
    {
        _target = target;
        _observer = observer;
    }

    public async Task<ParityCount> CountAsync(TableInfo table, BatchKey key, string oldColumn, string newColumn, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var activity = $"Parity {table.QualifiedName}: {Ident.Quote(oldColumn)} vs {Ident.Quote(newColumn)}";
        var mismatch = $"s.zdt_old IS DISTINCT FROM s.zdt_new";
        var select = $"{Ident.Quote(oldColumn)} AS zdt_old, {Ident.Quote(newColumn)} AS zdt_new";
        long rows = 0, mismatches = 0;
        var samples = new List<string>();
        await using var connection = await _target.OpenAsync(ct).ConfigureAwait(false);

        if (key.IsCtid)
        {
            long pages;
            await using (var size = new NpgsqlCommand("SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint", connection))
            {
                size.Parameters.Add(new NpgsqlParameter { Value = table.QualifiedName });
                pages = (long)(await size.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            }

            var sql = $"""
                WITH s AS (SELECT ctid::text AS zdt_key, {select} FROM {table.QualifiedName}
                           WHERE ctid >= format('(%s,0)', $1::bigint)::tid AND ctid < format('(%s,0)', $2::bigint)::tid)
                SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM s WHERE {mismatch}),
                       (SELECT json_agg(zdt_key) FROM (SELECT zdt_key FROM s WHERE {mismatch} LIMIT {SampleSize}) m)::text, NULL::text
                """;
            for (long page = 0; page < pages; page += PagesPerBatch)
            {
                await using var cmd = new NpgsqlCommand(sql, connection);
                cmd.Parameters.Add(new NpgsqlParameter { Value = page });
                cmd.Parameters.Add(new NpgsqlParameter { Value = page + PagesPerBatch });
                var (n, bad, sample, _) = await ReadAsync(cmd, ct).ConfigureAwait(false);
                Accumulate(ref rows, ref mismatches, samples, n, bad, sample);
                Report(activity, rows, table.EstimatedRows, watch.Elapsed);
            }
        }
        else
        {
            IReadOnlyList<string>? last = null;
            while (true)
            {
                var lower = last is null ? "" : $"WHERE {key.RowExpression()} > {key.ParameterRow(1)}";
                var limit = last is null ? 1 : key.Columns.Count + 1;
                var sql = $"""
                    WITH s AS (SELECT json_build_array({key.AsText()})::text AS zdt_key, {key.OrderBy()}, {select}
                               FROM {table.QualifiedName} {lower} ORDER BY {key.OrderBy()} LIMIT ${limit})
                    SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM s WHERE {mismatch}),
                           (SELECT json_agg(zdt_key) FROM (SELECT zdt_key FROM s WHERE {mismatch} LIMIT {SampleSize}) m)::text,
                           (SELECT zdt_key FROM s ORDER BY {string.Join(", ", key.Columns.Select(c => Ident.Quote(c) + " DESC"))} LIMIT 1)
                    """;
                await using var cmd = new NpgsqlCommand(sql, connection);
                foreach (var value in last ?? Array.Empty<string>())
                {
                    cmd.Parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = NpgsqlDbType.Text });
                }

                cmd.Parameters.Add(new NpgsqlParameter { Value = RowsPerBatch });
                var (n, bad, sample, lastKey) = await ReadAsync(cmd, ct).ConfigureAwait(false);
                Accumulate(ref rows, ref mismatches, samples, n, bad, sample);
                Report(activity, rows, table.EstimatedRows, watch.Elapsed);
                if (n < RowsPerBatch || lastKey is null)
                {
                    break;
                }

                last = JsonSerializer.Deserialize<string[]>(lastKey);
            }
        }

        _observer.Progress(new ProgressUpdate(activity, "done", 100, 0, Completed: true));
        return new ParityCount(rows, mismatches, samples, watch.Elapsed);
    }

    private static void Accumulate(ref long rows, ref long mismatches, List<string> samples, long n, long bad, string? sample)
    {
        rows += n;
        mismatches += bad;
        if (sample is not null && samples.Count < SampleSize)
        {
            samples.AddRange((JsonSerializer.Deserialize<string[]>(sample) ?? Array.Empty<string>()).Take(SampleSize - samples.Count));
        }
    }

    private void Report(string activity, long rows, long estimate, TimeSpan elapsed)
    {
        var rate = elapsed.TotalSeconds > 0 ? rows / elapsed.TotalSeconds : 0;
        var percent = estimate > 0 ? (int)Math.Clamp(rows * 100 / estimate, 0, 99) : -1;
        var remaining = rate > 0 && estimate > rows ? (int)((estimate - rows) / rate) : -1;
        _observer.Progress(new ProgressUpdate(activity, string.Create(CultureInfo.InvariantCulture, $"{rows:N0} of ~{estimate:N0} rows checked, {rate:N0} rows/s"), percent, remaining));
    }

    private static async Task<(long Rows, long Mismatches, string? Sample, string? Last)> ReadAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        return (reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3));
    }
}
