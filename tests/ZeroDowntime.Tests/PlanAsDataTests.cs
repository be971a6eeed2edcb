using ZeroDowntime.Engine;
using ZeroDowntime.Engine.Errors;
using ZeroDowntime.Engine.Planning;
using ZeroDowntime.Tests.Infrastructure;
using ZeroDowntime.Tests.Support;

namespace ZeroDowntime.Tests;

/// <summary>
/// A plan file (-PlanPath) read back at run time (-ExpectedPlan, <see cref="ApprovedPlan"/>): the SQL
/// planned now must be the approved SQL, compared on the lines that run, against real plans.
/// </summary>
public class PlanAsDataTests : IClassFixture<TestDatabase>
{
    private static readonly TimeSpan LockTimeout = TimeSpan.FromMilliseconds(200);
    private static readonly DateTimeOffset PlannedAt = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);

    private readonly TestDatabase _db;

    public PlanAsDataTests(TestDatabase db)
    {
        _db = db;
    }

    [Fact]
    public async Task A_plan_file_approves_the_same_plan_made_again_and_refuses_it_once_the_table_changed()
    {
        await Tables.CreateOrdersAsync(_db, "orders_plan1", rows: 10);
        var engine = Engines.For(_db);
        var request = new TableRenameRequest("public", "orders_plan1", "orders_plan1_v2");
        var shown = await engine.PlanTableRenameAsync(request);
        var file = ApprovedPlan.Section(shown, LockTimeout, PlannedAt);
        Assert.StartsWith($"{ApprovedPlan.HeaderPrefix}Expand RenameTable on \"public\".\"orders_plan1\"\n", file, StringComparison.Ordinal);

        // Planned again, unchanged: approved, also from a file with Windows line ends and a reviewer's note.
        var approved = ApprovedPlan.Parse("Reviewed by the DBA team.\r\n" + file.Replace("\n", "\r\n", StringComparison.Ordinal), "expand.sql");
        approved.Require(await engine.PlanTableRenameAsync(request), LockTimeout);

        // Another lock_timeout is other SQL: refused.
        var other = Assert.Throws<ZdtException>(() => approved.Require(shown, TimeSpan.FromMilliseconds(500)));
        Assert.Equal(ErrorIds.PlanNotApproved, other.ErrorId);
        Assert.Contains("approved 'SET LOCAL lock_timeout = '200ms';', now 'SET LOCAL lock_timeout = '500ms';'", other.Message, StringComparison.Ordinal);

        // A column added since: the view lists it, so the SQL differs and the plan is refused.
        await _db.ExecuteAsync("ALTER TABLE orders_plan1 ADD COLUMN added_later int");
        var changed = await engine.PlanTableRenameAsync(request);
        var refused = Assert.Throws<ZdtException>(() => approved.Require(changed, LockTimeout));
        Assert.Equal(ErrorIds.PlanNotApproved, refused.ErrorId);
        Assert.Contains("expand.sql", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Comments_of_a_plan_file_may_be_edited_but_not_its_SQL_and_a_plan_for_another_phase_is_not_an_approval()
    {
        await Tables.CreateOrdersAsync(_db, "orders_plan2", rows: 10);
        var engine = Engines.For(_db);
        var migration = await engine.RenameTableAsync("orders_plan2", "orders_plan2_v2");
        var contract = await engine.PlanContractAsync(migration.Id);
        var undo = await engine.PlanUndoAsync(migration.Id);
        var file = ApprovedPlan.Section(contract, LockTimeout, PlannedAt);

        var annotated = file.Replace("-- Step 1:", "-- Reviewed, OK. Step 1:", StringComparison.Ordinal);
        ApprovedPlan.Parse(annotated, "contract.sql").Require(contract, LockTimeout);

        var edited = file.Replace("DROP VIEW", "DROP VIEW IF EXISTS", StringComparison.Ordinal);
        Assert.NotEqual(file, edited);
        Assert.Equal(ErrorIds.PlanNotApproved, Assert.Throws<ZdtException>(() => ApprovedPlan.Parse(edited, "contract.sql").Require(contract, LockTimeout)).ErrorId);

        var wrongPhase = Assert.Throws<ZdtException>(() => ApprovedPlan.Parse(file, "contract.sql").Require(undo, LockTimeout));
        Assert.Contains($"has no plan for Undo RenameTable on \"public\".\"orders_plan2\" (migration {migration.Id})", wrongPhase.Message, StringComparison.Ordinal);

        // Both phases in one file (the sections of several inputs): each finds its own.
        var both = ApprovedPlan.Parse(file + "\n" + ApprovedPlan.Section(undo, LockTimeout, PlannedAt), "plans.sql");
        both.Require(contract, LockTimeout);
        both.Require(undo, LockTimeout);
        Assert.Equal(new[] { contract.Key, undo.Key }, both.Keys);
    }

    [Fact]
    public async Task A_plan_with_nothing_to_run_needs_no_approval_and_a_file_without_a_plan_is_refused()
    {
        await Tables.CreateOrdersAsync(_db, "orders_plan3", rows: 10);
        var engine = Engines.For(_db);
        var migration = await engine.RenameTableAsync("orders_plan3", "orders_plan3_v2");
        var file = ApprovedPlan.Section(await engine.PlanContractAsync(migration.Id), LockTimeout, PlannedAt);
        await engine.CompleteAsync(migration.Id);

        // A retried stage: the contract is done, its plan has no step, and the approval still passes.
        var again = await engine.PlanContractAsync(migration.Id);
        Assert.True(again.AlreadyDone);
        ApprovedPlan.Parse(file, "contract.sql").Require(again, LockTimeout);

        var notAPlan = Assert.Throws<ZdtException>(() => ApprovedPlan.Parse("DROP TABLE orders;\n", "notes.sql"));
        Assert.Equal(ErrorIds.PlanNotApproved, notAPlan.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, notAPlan.Kind);
    }
}
