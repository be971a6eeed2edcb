using System.Management.Automation;
using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Planning;

namespace ZeroDowntime.PowerShell.Commands;

/// <summary>
/// Adds a UNIQUE constraint: its unique index is built with CREATE UNIQUE INDEX CONCURRENTLY, then attached
/// with ADD CONSTRAINT ... USING INDEX, a catalog change. Duplicates are counted in the
/// error and the index is dropped again. Runs to its end in one call: the ledger records it as completed.
/// </summary>
[Cmdlet(VerbsCommon.Add, "UniqueConstraint", HelpUri = HelpLinks.Base + "add-uniqueconstraint", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Migration))]
[OutputType(typeof(PhasePlan))]
public sealed class AddUniqueConstraintCommand : IndexBackedConstraintCommandBase
{
    protected override AddConstraintRequest CreateRequest()
        => new(Schema, Table, ConstraintKind.Unique) { Name = Name, Columns = Column };
}
