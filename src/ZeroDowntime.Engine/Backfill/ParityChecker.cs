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
    private const int PagesPerBatch = 4_000;
    private const int SampleSize = 10;

    private readonly ConnectionTarget _target;
    private readonly IMigrationObserver _observer;

    public ParityChecker(ConnectionTarget target, IMigrationObserver observer)
    {
        _target = target;
        _observer = observer;
    }

    /// <summary>
    /// Counts mismatches. On PostgreSQL 14+ it reads the table in ctid page ranges (TID range scans:
    /// sequential reads, many times faster than walking a key index) and names mismatching rows by
    /// their key; before 14 it walks the key. Rows the application writes during the scan may move
    /// between pages, but every such row was just synced by the trigger; a row that is out of sync
    /// is one nobody touched, which stays where it is and is counted.
    /// The predicate of a row out of sync (<paramref name="mismatch"/>, over the table's qualified
    /// name) is the operation's, as its backfill is; <paramref name="what"/> names the comparison for progress.
    /// </summary>
    public async Task<ParityCount> CountAsync(TableInfo table, BatchKey key, string mismatch, string what, int serverVersion, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var activity = $"Parity {table.QualifiedName}: {what}";
        // The comparison is computed once per row; keys become text (JSON) only for the sample of
        // mismatching rows and for the last row of the range, not for every row.
        // COALESCE: a predicate that is NULL for a row (a conversion of NULL) counts it as in sync.
        var comparison = $"COALESCE({mismatch}, false) AS zdt_bad";
        long rows = 0, mismatches = 0;
        var samples = new List<string>();
        await using var connection = await _target.OpenAsync(ct).ConfigureAwait(false);
        // Read-only range scans under ACCESS SHARE: a statement_timeout of the database or role must
        // not cancel the check half-way (the session's settings are reset when it returns to the pool).
        await using (var noTimeout = new NpgsqlCommand("SET statement_timeout = 0", connection))
        {
            await noTimeout.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        if (key.IsCtid || serverVersion >= 140000)
        {
            long pages;
            await using (var size = new NpgsqlCommand("SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint", connection))
            {
                size.Parameters.Add(new NpgsqlParameter { Value = table.QualifiedName });
                pages = (long)(await size.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            }

            var sql = $"""
                WITH s AS (SELECT {(key.IsCtid ? "ctid AS zdt_tid" : key.OrderBy())}, {comparison} FROM {table.QualifiedName}
                           WHERE ctid >= format('(%s,0)', $1::bigint)::tid AND ctid < format('(%s,0)', $2::bigint)::tid)
                SELECT count(*), count(*) FILTER (WHERE zdt_bad),
                       (SELECT json_agg({(key.IsCtid ? "m.zdt_tid::text" : $"json_build_array({key.AsText("m")})::text")}) FROM (SELECT * FROM s WHERE zdt_bad LIMIT {SampleSize}) m)::text, NULL::text
                FROM s
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
                    WITH s AS (SELECT {key.OrderBy()}, {comparison}
                               FROM {table.QualifiedName} {lower} ORDER BY {key.OrderBy()} LIMIT ${limit})
                    SELECT count(*), count(*) FILTER (WHERE zdt_bad),
                           (SELECT json_agg(json_build_array({key.AsText("m")})::text) FROM (SELECT * FROM s WHERE zdt_bad LIMIT {SampleSize}) m)::text,
                           (SELECT json_build_array({key.AsText("s")})::text FROM s ORDER BY {string.Join(", ", key.Columns.Select(c => "s." + Ident.Quote(c) + " DESC"))} LIMIT 1)
                    FROM s
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
