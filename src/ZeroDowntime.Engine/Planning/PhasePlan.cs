using System.Text;

namespace ZeroDowntime.Engine.Planning;

/// <summary>What one phase action is (expand, contract, undo, ...).</summary>
public enum PhaseAction
{
    Expand,
    Backfill,
    Verify,
    Contract,
    Undo,

    /// <summary>The whole of an operation that runs in one call (an index, a constraint, raw DDL) and is recorded as completed.</summary>
    Apply,
}

/// <summary>
/// Everything one phase of a migration will do, planned before anything runs. The cmdlets show
/// it with -WhatIf / -Confirm and the engine runs exactly these steps: RunAsync re-plans against
/// the live catalog and refuses if the SQL would differ from what was shown.
/// </summary>
public sealed class PhasePlan
{
    internal PhasePlan(
        string operation,
        PhaseAction action,
        long? migrationId,
        string target,
        string summary,
        IReadOnlyList<DdlStep> steps,
        object spec)
    {
        Operation = operation;
        Action = action;
        MigrationId = migrationId;
        Target = target;
        Summary = summary;
        Steps = steps;
        Spec = spec;
    }

    /// <summary>The operation kind, e.g. "RenameTable".</summary>
    public string Operation { get; }

    public PhaseAction Action { get; }

    /// <summary>The ledger id; null for an expand that has not registered its migration yet.</summary>
    public long? MigrationId { get; }

    /// <summary>The table the phase works on, quoted and qualified, e.g. "public"."orders".</summary>
    public string Target { get; }

    /// <summary>One sentence for ShouldProcess, e.g. "Rename table "public"."orders" to "orders_v2" behind a view".</summary>
    public string Summary { get; }

    public IReadOnlyList<DdlStep> Steps { get; }

    /// <summary>
    /// The phase's result is already there (the same expand request started <see cref="MigrationId"/>,
    /// a contract already completed, an index that already exists with -IfNotExists): there is no
    /// step, running it changes nothing, and <see cref="Summary"/> says why. A pipeline stage run
    /// again passes instead of failing.
    /// </summary>
    public bool AlreadyDone { get; internal init; }

    /// <summary>The caller's label for a migration this plan starts (stored in the ledger with it); null for none.</summary>
    public string? Tag { get; internal init; }

    /// <summary>The operation's own description of the migration (stored in the ledger), opaque outside the engine.</summary>
    internal object Spec { get; }

    /// <summary>
    /// Which phase of what this plan is, in words that stay the same from planning to running
    /// ("Contract RenameColumn on "public"."orders" (migration 7)"): how a plan file names its
    /// sections and how -ExpectedPlan finds the one to compare with (<see cref="ApprovedPlan"/>).
    /// </summary>
    public string Key => MigrationId is { } id ? $"{Action} {Operation} on {Target} (migration {id})" : $"{Action} {Operation} on {Target}";

    /// <summary>The SQL of every step, as a script a DBA could read or run by hand.</summary>
    public string ToScript(TimeSpan lockTimeout)
    {
        var sb = new StringBuilder();
        sb.Append("-- ").Append(Summary).Append('\n');
        var n = 0;
        foreach (var step in Steps)
        {
            n++;
            sb.Append('\n').Append("-- Step ").Append(n).Append(": ").Append(step.Title).Append('\n');
            sb.Append("--   takes ").Append(step.Lock.ToSqlName()).Append(" on ").Append(step.LockTarget).Append(": ").Append(step.Why).Append('\n');
            var timeout = (long)(step.LockTimeout ?? lockTimeout).TotalMilliseconds;
            if (step.Transactional)
            {
                sb.Append("BEGIN;\n");
                if (step.LiftsStatementTimeout)
                {
                    sb.Append("SET LOCAL statement_timeout = 0;  -- blocks no read or write: may take as long as the table needs\n");
                }

                sb.Append("SET LOCAL lock_timeout = '").Append(timeout).Append("ms';\n");
                if (step.Lock >= LockLevel.ShareUpdateExclusive)
                {
                    sb.Append("LOCK TABLE ").Append(step.LocksTargetOnly ? "ONLY " : "").Append(step.LockTarget).Append(" IN ").Append(step.Lock.ToSqlName())
                        .Append(" MODE;  -- taken first when ").Append(step.LockTarget).Append(" is a table (on a view it would lock the base tables too)\n");
                }
            }
            else
            {
                if (step.LiftsStatementTimeout)
                {
                    sb.Append("SET statement_timeout = 0;  -- blocks no read or write: may take as long as the table needs\n");
                }

                sb.Append("SET lock_timeout = '").Append(timeout).Append("ms';\n");
            }

            foreach (var statement in step.Statements)
            {
                sb.Append(statement).Append(";\n");
            }

            if (step.Transactional)
            {
                sb.Append("COMMIT;\n");
            }

            if (step.CleanupOnFailure.Count > 0)
            {
                sb.Append("-- on failure: ").Append(string.Join("; ", step.CleanupOnFailure)).Append('\n');
            }
        }

        return sb.ToString();
    }

    public override string ToString() => Summary;
}
