namespace ZeroDowntime.Engine.Backfill;

/// <summary>
/// What an operation wants a backfill to do to each row: the SET clause and the filter that says a
/// row still needs it (rows the trigger or a default already filled are skipped, so re-running
/// is cheap and a resumed backfill never writes a row twice). Both are given the table's alias.
/// <paramref name="ConfirmWithCleanPass"/>: when the pending filter is a per-row marker (so "no
/// pending row in a whole pass" is a proof, whatever NULLs the application wrote), a walk over ctid
/// page ranges ends only after a pass that found no pending row while the table was not rewritten.
/// </summary>
internal sealed record BackfillDesign(Func<string, string> SetClause, Func<string, string> PendingFilter, string Description, bool ConfirmWithCleanPass = false);
