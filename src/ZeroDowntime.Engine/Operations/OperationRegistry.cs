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
        ColumnRenameView.KindName => new ColumnRenameView(MigrationLedger.FromJson<ColumnRenameView.Spec>(row.SpecJson)),
        _ => throw new ZdtException(
            "UnknownOperation",
            ErrorKind.NotImplemented,
            $"Migration {row.Id} was recorded by operation '{row.Operation}', which this version of ZeroDowntime does not know. Use the version that created it."),
    };
}
