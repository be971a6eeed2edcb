using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Ledger;

namespace ZeroDowntime.Engine.Operations;

/// <summary>Turns a ledger row back into the operation that planned it.</summary>
internal static class OperationRegistry
{
    public static MigrationOperation FromLedger(LedgerRow row) => row.Operation switch
    {
        TableRename.KindName => new TableRename(MigrationLedger.FromJson<TableRename.Spec>(row.SpecJson)),
        ColumnRename.KindName => new ColumnRename(MigrationLedger.FromJson<ColumnRename.Spec>(row.SpecJson)),
        ColumnTypeChange.KindName => new ColumnTypeChange(MigrationLedger.FromJson<ColumnTypeChange.Spec>(row.SpecJson)),
        ColumnRenameView.KindName => new ColumnRenameView(MigrationLedger.FromJson<ColumnRenameView.Spec>(row.SpecJson)),
        AddColumn.KindName => new AddColumn(MigrationLedger.FromJson<AddColumn.Spec>(row.SpecJson)),
        SetColumnNotNull.KindName => new SetColumnNotNull(MigrationLedger.FromJson<SetColumnNotNull.Spec>(row.SpecJson)),
        IndexCreation.KindName => new IndexCreation(MigrationLedger.FromJson<IndexCreation.Spec>(row.SpecJson)),
        IndexRemoval.KindName => new IndexRemoval(MigrationLedger.FromJson<IndexRemoval.Spec>(row.SpecJson)),
        ConstraintAddition.KindName => new ConstraintAddition(MigrationLedger.FromJson<ConstraintAddition.Spec>(row.SpecJson)),
        SafeDdl.KindName => new SafeDdl(MigrationLedger.FromJson<SafeDdl.Spec>(row.SpecJson)),
        _ => throw new ZdtException(
            ErrorIds.UnknownOperation,
            ErrorKind.NotImplemented,
            $"Migration {row.Id} was recorded by operation '{row.Operation}', which this version of ZeroDowntime does not know. Use the version that created it."),
    };
}
