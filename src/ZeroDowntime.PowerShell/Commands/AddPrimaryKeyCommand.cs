using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Adds a PRIMARY KEY: its unique index is built with CREATE UNIQUE INDEX CONCURRENTLY, then attached
/// with ADD CONSTRAINT ... USING INDEX, a catalog change. The columns must already be NOT NULL (Set-ColumnNotNull): otherwise PostgreSQL would scan the table under ACCESS EXCLUSIVE to set it, and the command refuses. Duplicates are counted in the
/// error and the index is dropped again. Runs to its end in one call: the ledger records it as completed.
/// </summary>
[Cmdlet(VerbsCommon.Add, "PrimaryKey", HelpUri = HelpLinks.Base + "add-primarykey", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class AddPrimaryKeyCommand : IndexBackedConstraintCommandBase
{
    protected override AddConstraintRequest CreateRequest()
        => new(Schema, Table, ConstraintKind.PrimaryKey) { Name = Name, Columns = Column };
}
