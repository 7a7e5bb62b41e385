"""A rollback that waits behind others of its targets acts on the state they leave.

The host's queue says how many rollbacks are ahead; `meanwhile` is what the one ahead does to
the world while this one waits, and `host.ahead` what the index says it rolled back. Claims: a
target a rollback that went ahead rolled back is left alone, not taken one further (unless
pinned); a rollback that waited is planned again at its turn and runs that plan; an approval
given to a plan whose destinations then moved never runs; a plan that fails while others go
first waits and is made again at the turn; a dry run never waits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rollback_operator.api.conditions import ConditionType, Reason, find
from rollback_operator.api.rollback import (
    DatabasePlan,
    DeploymentPlan,
    Phase,
    RollbackPlan,
    RollbackStatus,
    StepState,
)
from rollback_operator.reconcile.planner import plan_change
from rollback_operator.reconcile.queue import RolledBack
from tests.unit.test_engine import Harness

THREE_DEPLOYMENTS = {"history": ["dpl_older", "dpl_old", "dpl_new"], "live": "dpl_new"}


def _frontend_only(**spec: Any) -> Harness:
    h = Harness(targets=["frontend"], **spec)
    h.world.state["frontend"].update(THREE_DEPLOYMENTS)
    return h


def _frontend_moves_meanwhile(h: Harness, to: str = "dpl_old") -> None:
    """The rollback ahead moves the frontend while this one waits its turn, and is not done
    with it (it is aborted, say): the index does not count the frontend as rolled back."""
    h.host.queue = [1, 1]
    h.host.meanwhile = [lambda: h.world.state["frontend"].update(live=to)]


def _first_rolls_frontend_back(h: Harness, to: str = "dpl_old") -> None:
    """rb-1, running when this one was created, rolls the frontend back and succeeds."""
    _frontend_moves_meanwhile(h, to)
    h.host.meanwhile.append(lambda: h.host.ahead.update(frontend=RolledBack(by="rb-1", to=to)))


LEFT_BY_RB_1 = (
    "frontend: already rolled back by rb-1 to dpl_old while this rollback waited; "
    "not rolled back further"
)


async def test_a_rollback_created_while_another_ran_leaves_what_that_one_rolled_back() -> None:
    h = _frontend_only()
    _first_rolls_frontend_back(h)
    assert await h.run() == Phase.SUCCEEDED
    assert h.world.state["frontend"]["live"] == "dpl_old"  # N-1, not N-2
    assert h.world.calls("frontend.rollback") == 0
    assert h.world.state["requests"]["frontend.plan"] == 1  # before the first acted; not again
    assert [(n, st, m) for n, t, st, m in _step_records(h) if t == "frontend"] == [
        ("instant-rollback", StepState.SKIPPED, LEFT_BY_RB_1)
    ]
    assert (
        h.host.last.message
        == f"Nothing to do: {LEFT_BY_RB_1.removesuffix('; not rolled back further')}"
    )
    said = [(w, m) for w, r, m in h.host.events if r == Reason.ALREADY_ROLLED_BACK]
    assert said == [(False, LEFT_BY_RB_1)]
    assert "Replanned" not in h.host.reasons()
    assert h.reports.reports == {}  # rb-1 wrote the report and told the channel: nothing to add
    assert h.world.state["notices"] == []


async def test_targets_the_rollback_ahead_did_not_roll_back_are_still_rolled_back() -> None:
    h = Harness(targets=["frontend", "backend"])
    h.world.state["frontend"].update(THREE_DEPLOYMENTS)
    _first_rolls_frontend_back(h)
    assert await h.run() == Phase.SUCCEEDED
    assert h.world.calls("frontend.rollback") == 0
    assert h.world.calls("backend.rollback") == 1
    assert h.host.last.message == (
        "Rollback succeeded: instant-rollback (backend); left alone: "
        "frontend: already rolled back by rb-1 to dpl_old while this rollback waited"
    )


async def test_a_pinned_target_is_acted_on_whatever_the_rollback_ahead_did() -> None:
    h = _frontend_only(to={"frontend": {"deploymentId": "dpl_older"}})
    _first_rolls_frontend_back(h)
    assert await h.run() == Phase.SUCCEEDED
    assert h.world.state["frontend"]["live"] == "dpl_older"
    assert Reason.ALREADY_ROLLED_BACK not in h.host.reasons()


async def test_a_database_restored_by_the_rollback_ahead_is_not_restored_again() -> None:
    h = Harness(mode="full", targets=["database"])
    h.host.queue = [1, 1]
    done = RolledBack(by="rb-1", to="backup backup_20240101.dump")
    h.host.meanwhile = [lambda: h.host.ahead.update(database=done)]
    assert await h.run() == Phase.SUCCEEDED
    assert h.world.calls("database.restore") == 0
    assert h.world.calls("database.safety_backup") == 0
    database_steps = [st for _, t, st, _ in _step_records(h) if t == "database"]
    assert database_steps == [StepState.SKIPPED, StepState.SKIPPED]


async def test_an_approved_rollback_whose_target_went_back_ahead_of_it_has_nothing_to_do() -> None:
    h = _frontend_only(requireApproval=True)
    h.host.on_pause = ["approve"]
    h.host.queue = [1, 1]
    h.host.meanwhile = [
        lambda: None,
        lambda: h.world.state["frontend"].update(live="dpl_old"),
        lambda: h.host.ahead.update(frontend=RolledBack(by="rb-1", to="dpl_old")),
    ]
    assert await h.run() == Phase.SUCCEEDED  # leaving a target alone is no change to approve
    assert h.world.calls("frontend.rollback") == 0
    assert _condition(h, ConditionType.APPROVED)[1] == Reason.APPROVED
    assert (h.host.last.message or "").startswith(
        "Nothing to do: frontend: already rolled back by rb-1"
    )


async def test_one_that_plans_only_after_the_one_ahead_ended_leaves_its_target_too() -> None:
    h = _frontend_only()  # created while rb-1 ran; its daemon started once rb-1 had ended
    h.host.ahead = {"frontend": RolledBack(by="rb-1", to="dpl_old")}
    assert await h.run() == Phase.SUCCEEDED
    assert h.world.calls("frontend.rollback") == 0
    assert h.world.state["requests"].get("frontend.plan", 0) == 0  # nothing left to read


def _step_records(h: Harness) -> list[tuple[str, str | None, StepState, str | None]]:
    return [
        (s.name, s.target.value if s.target else None, s.state, s.message)
        for s in h.host.last.steps
    ]


def _frontend_move(status: RollbackStatus) -> tuple[str | None, str]:
    """Where the recorded plan moves the frontend: (from, to)."""
    move = status.plan.frontend if status.plan else None
    assert move is not None, status.plan
    return move.from_, move.to


def _condition(h: Harness, type_: ConditionType) -> tuple[str, str, str]:
    found = find(h.host.last.conditions, type_)
    assert found is not None, h.host.last.conditions
    return found.status, found.reason, found.message


async def test_a_rollback_that_waited_behind_another_is_planned_against_the_state_it_left() -> None:
    h = _frontend_only()
    _frontend_moves_meanwhile(h)
    assert await h.run() == Phase.SUCCEEDED
    queued = next(s for s in h.host.statuses if s.phase == Phase.QUEUED)
    assert _frontend_move(queued) == ("dpl_new", "dpl_old")  # planned before the first acted
    assert _frontend_move(h.host.last) == ("dpl_old", "dpl_older")
    assert h.world.state["frontend"]["live"] == "dpl_older"
    status, reason, message = _condition(h, ConditionType.PLANNED)
    assert (status, reason) == ("True", Reason.REPLANNED)
    assert "frontend: dpl_old -> dpl_older" in message
    assert ("Replanned", message) in [(r, m) for _, r, m in h.host.events]


async def test_a_rollback_admitted_at_once_is_planned_once() -> None:
    h = _frontend_only()
    assert await h.run() == Phase.SUCCEEDED
    assert h.world.state["requests"]["frontend.plan"] == 1
    assert _condition(h, ConditionType.PLANNED)[1] == Reason.PLANNED


async def test_an_approval_given_to_a_plan_whose_destination_moved_never_runs() -> None:
    h = _frontend_only(requireApproval=True)
    h.host.on_pause = ["approve"]
    h.host.queue = [1, 1]
    h.host.meanwhile = [lambda: None, lambda: h.world.state["frontend"].update(live="dpl_old")]
    assert await h.run() == Phase.FAILED
    assert h.world.state["calls"] == {}
    assert h.host.released
    status, reason, message = _condition(h, ConditionType.APPROVED)
    assert (status, reason) == ("False", Reason.PLAN_CHANGED)
    assert "frontend: dpl_old -> dpl_older" in message
    assert "alice" in message
    assert h.host.last.message == message
    assert {state for _, _, state in h.steps()} == {StepState.SKIPPED}
    assert _frontend_move(h.host.last) == ("dpl_new", "dpl_old")  # the plan alice approved


async def test_an_approved_plan_whose_destinations_held_runs_from_the_state_now() -> None:
    h = _frontend_only(requireApproval=True, to={"frontend": {"deploymentId": "dpl_old"}})
    h.host.on_pause = ["approve"]
    h.host.queue = [1, 1]
    h.host.meanwhile = [lambda: None, lambda: h.world.state["frontend"].update(live="dpl_old")]
    assert await h.run() == Phase.SUCCEEDED
    assert _frontend_move(h.host.last) == ("dpl_old", "dpl_old")
    assert h.world.calls("frontend.rollback") == 0  # it was there already
    assert _condition(h, ConditionType.APPROVED)[1] == Reason.APPROVED
    assert "Replanned" not in h.host.reasons()


async def test_a_plan_failing_while_another_goes_first_waits_and_is_made_at_its_turn() -> None:
    h = _frontend_only()
    h.world.inject("frontend.plan", {"kind": "permanent"})
    h.host.queue = [1]
    assert await h.run() == Phase.SUCCEEDED
    waiting = next(s for s in h.host.statuses if s.phase == Phase.QUEUED)
    assert waiting.queue_position == 1
    assert waiting.plan is None
    planned = find(waiting.conditions, ConditionType.PLANNED)
    assert planned is not None
    assert planned.reason == Reason.PLAN_WAITING
    assert "injected permanent fault" in planned.message
    assert Phase.FAILED not in {s.phase for s in h.host.statuses}
    assert h.world.state["frontend"]["live"] == "dpl_old"


async def test_a_plan_failing_again_at_its_turn_fails_and_nothing_changes() -> None:
    h = _frontend_only()
    h.world.inject("frontend.plan", {"kind": "permanent"}, {"kind": "permanent"})
    h.host.queue = [2, 1]
    assert await h.run() == Phase.FAILED
    assert [s.queue_position for s in h.host.statuses if s.phase == Phase.QUEUED] == [2, 1]
    assert h.world.state["calls"] == {}
    assert _condition(h, ConditionType.PLANNED)[1] == Reason.PLAN_FAILED


async def test_a_replan_failing_at_the_turn_fails_and_gives_the_turn_back() -> None:
    h = Harness(targets=["frontend"])  # two deployments: after the first, none is earlier
    _frontend_moves_meanwhile(h)
    assert await h.run() == Phase.FAILED
    assert h.host.released
    assert h.world.state["calls"] == {}
    status, reason, message = _condition(h, ConditionType.PLANNED)
    assert (status, reason) == ("False", Reason.PLAN_FAILED)
    assert message.startswith("Planning again at its turn failed")
    assert "no earlier" in message
    assert {state for _, _, state in h.steps()} == {StepState.SKIPPED}


async def test_a_dry_run_whose_plan_fails_does_not_wait() -> None:
    h = _frontend_only(dryRun=True)
    h.world.inject("frontend.plan", {"kind": "permanent"})
    h.host.queue = [1]
    assert await h.run() == Phase.FAILED
    assert h.host.queue == [1]  # never asked for a turn


async def test_an_abort_while_waiting_to_plan_ends_aborted_with_nothing_planned() -> None:
    h = _frontend_only()
    h.world.inject("frontend.plan", {"kind": "permanent"})
    h.host.queue, h.host.on_pause = [1, 1, 1], ["abort"]
    assert await h.run() == Phase.ABORTED
    assert h.host.last.plan is None
    assert h.host.last.steps == []
    assert h.world.state["calls"] == {}


async def test_an_operator_restart_in_the_queue_still_plans_again_at_the_turn() -> None:
    h = _frontend_only()
    h.host.queue, h.host.stop_after_pauses = [1], 1
    assert await h.run() is None
    h.world.state["frontend"]["live"] = "dpl_old"  # something moved it while the operator was down
    h.host.stop_after_pauses = None
    assert await h.resume() == Phase.SUCCEEDED
    assert h.world.state["frontend"]["live"] == "dpl_older"


async def test_an_operator_restart_in_the_queue_still_leaves_what_the_one_ahead_rolled_back() -> (
    None
):
    h = _frontend_only()
    h.host.queue, h.host.stop_after_pauses = [1], 1
    assert await h.run() is None
    h.world.state["frontend"]["live"] = "dpl_old"  # rb-1 ran while the operator was down
    h.host.ahead = {"frontend": RolledBack(by="rb-1", to="dpl_old")}
    h.host.stop_after_pauses = None
    assert await h.resume() == Phase.SUCCEEDED
    assert h.world.state["frontend"]["live"] == "dpl_old"
    assert h.world.calls("frontend.rollback") == 0


def test_a_plan_change_names_moved_destinations_and_ignores_readings_that_drift() -> None:
    taken = datetime(2024, 1, 1, tzinfo=UTC)
    database = DatabasePlan(backup="b1.dump", taken_at=taken, data_loss_window="3h")
    before = RollbackPlan(
        frontend=DeploymentPlan.model_validate({"from": "a", "to": "b", "serving": True}),
        database=database,
    )
    drifted = before.model_copy(deep=True)
    assert drifted.frontend is not None
    assert drifted.database is not None
    drifted.frontend.from_, drifted.database.data_loss_window = "b", "4h"
    assert plan_change(before, drifted) is None
    stopped = drifted.model_copy(deep=True)
    assert stopped.frontend is not None
    stopped.frontend.serving = False
    assert plan_change(before, stopped) == "frontend: b -> b (left stopped)"
    moved = RollbackPlan(database=DatabasePlan(backup="b0.dump"))
    assert plan_change(before, moved) == (
        "frontend: b -> nothing; database: backup b1.dump -> backup b0.dump"
    )


async def test_a_restart_while_waiting_to_plan_plans_once_when_nobody_is_ahead_any_more() -> None:
    h = _frontend_only()
    h.world.inject("frontend.plan", {"kind": "permanent"})
    h.host.queue, h.host.stop_after_pauses = [1], 1
    assert await h.run() is None
    assert h.host.last.queue_position == 1
    h.host.stop_after_pauses = None  # the first ended while the operator was down
    assert await h.resume() == Phase.SUCCEEDED
    assert h.world.state["requests"]["frontend.plan"] == 2  # the failed one, then one plan


def _hotfix_deployed_meanwhile(h: Harness) -> None:
    """While the rollback waits for its approval, someone deploys a fix: it is live now."""
    frontend = h.world.state["frontend"]
    h.host.meanwhile = [
        lambda: frontend.update(history=[*frontend["history"], "dpl_fix"], live="dpl_fix")
    ]


async def test_an_approval_given_to_a_plan_the_world_moved_away_from_never_runs() -> None:
    """Approved after a fix went live: the approved rollback would take the fix down and put
    back the deployment the incident was about. Nothing runs; the approver is told why."""
    h = _frontend_only(requireApproval=True)
    h.host.on_pause = ["", "approve"]
    _hotfix_deployed_meanwhile(h)
    assert await h.run() == Phase.FAILED
    assert h.world.state["calls"] == {}
    assert h.world.state["frontend"]["live"] == "dpl_fix"
    status, reason, message = _condition(h, ConditionType.APPROVED)
    assert (status, reason) == ("False", Reason.PLAN_CHANGED)
    assert "while it waited for approval" in message
    assert "frontend: dpl_old -> dpl_new" in message
    assert _frontend_move(h.host.last) == ("dpl_new", "dpl_old")  # the plan alice approved


async def test_an_approval_of_a_plan_the_world_still_matches_runs_it() -> None:
    h = _frontend_only(requireApproval=True)
    h.host.on_pause = ["", "approve"]
    assert await h.run() == Phase.SUCCEEDED
    assert h.world.state["requests"]["frontend.plan"] == 2  # planned, and checked once approved
    assert h.world.state["frontend"]["live"] == "dpl_old"
    assert _condition(h, ConditionType.PLANNED)[1] == Reason.PLANNED


async def test_a_rollback_with_every_target_gone_back_ahead_asks_and_tells_nobody() -> None:
    """At 3 a.m. the rollback ahead has told the channel; this one has nothing to do, so it
    asks no person to approve it, sends no notice, runs no check and writes no report."""
    h = _frontend_only(requireApproval=True)
    h.host.ahead = {"frontend": RolledBack(by="rb-1", to="dpl_old")}
    h.host.stop_after_pauses = 3  # a wait for approval would stop the run here
    assert await h.run() == Phase.SUCCEEDED
    assert Phase.AWAITING_APPROVAL not in {s.phase for s in h.host.statuses}
    assert dict(h.world.state["calls"]) == {}
    assert (h.host.last.message or "").startswith(
        "Nothing to do: frontend: already rolled back by rb-1 to dpl_old"
    )
    assert h.steps() == [
        ("notify-started", None, StepState.SKIPPED),
        ("instant-rollback", "frontend", StepState.SKIPPED),
        ("verify", None, StepState.SKIPPED),
        ("report", None, StepState.SKIPPED),
        ("notify-finished", None, StepState.SKIPPED),
    ]
    assert _condition(h, ConditionType.APPROVED)[:2] == ("True", Reason.NOT_REQUIRED)
    assert h.host.reasons() == ["AlreadyRolledBack", "Succeeded"]
    assert h.host.last.report_ref is None


async def test_a_rollback_left_with_nothing_at_its_turn_ends_there_without_a_notice() -> None:
    h = _frontend_only()
    _first_rolls_frontend_back(h)
    assert await h.run() == Phase.SUCCEEDED
    assert dict(h.world.state["calls"]) == {}
    assert [s for _, t, s, _ in _step_records(h) if t is None] == [StepState.SKIPPED] * 4
    assert (h.host.last.message or "").startswith("Nothing to do: ")


async def test_a_dry_run_with_every_target_gone_back_ahead_still_shows_its_plan() -> None:
    h = _frontend_only(dryRun=True)
    h.host.ahead = {"frontend": RolledBack(by="rb-1", to="dpl_old")}
    assert await h.run() == Phase.PLANNED
