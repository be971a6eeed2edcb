namespace ZeroDowntime.Engine.Operations.ColumnCopy;

/// <summary>
/// A migration that copies a column under a sync trigger (the rename by copy; a type change):
/// what the parity check needs of it. Each copy supplies its own predicate, as it supplies its backfill.
/// </summary>
internal interface IColumnCopy
{
    /// <summary>The old and the new column, for the parity report.</summary>
    (string Old, string New) ParityColumns { get; }

    /// <summary>The predicate of a row out of sync, over the given relation name or alias (a partition's rows are checked under their own name).</summary>
    string ParityMismatch(string relation);

    /// <summary>Every table and column pair the parity check counts: this copy's own, then any other table's it changes with it (-Cascade).</summary>
    IReadOnlyList<ParityPart> ParityParts { get; }
}

/// <summary>
/// One table's share of a parity check: its old and new column and the predicate of a row out of
/// sync, given the name or alias the rows are read under (the table's, or each leaf partition's).
/// </summary>
internal sealed record ParityPart(uint TableOid, string OldColumn, string NewColumn, Func<string, string> Mismatch);
