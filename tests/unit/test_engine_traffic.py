"""Traffic a full rollback stopped, when the rollback fails or is aborted before it gives it back.

Claims, against the in-memory fakes: after a failure or an abort past stop-traffic, traffic stays
stopped by default (`failurePolicy.traffic: keepStopped`) and the condition TrafficStopped, the
report and the final notice say which layers and how to resume; the resume-traffic annotation
on the finished rollback then gives each layer back as a recorded `resume-traffic` step and the
condition turns False with reason Resumed; with `resume` (or the annotation set earlier) traffic
comes back at once, before the report and the last notice; a layer that served no traffic when
planned is not the rollback's to give back; a rollback that never stopped traffic has no such
condition.
"""

from __future__ import annotations

from typing import Any

from rollback_operator.api.conditions import ConditionType, find
from rollback_operator.api.rollback import Phase, StepState
from tests.unit.test_engine import Harness

RESUME_COMMAND = "kubectl rollback resume-traffic rb-1 -n default"


def failing_restore(**policy: Any) -> Harness:
    """A full rollback whose database restore fails for good, after traffic was stopped."""
    h = Harness(policy_changes=policy or None, mode="full")
    h.world.inject("database.restore", {"kind": "permanent"})
    return h


def traffic_condition(h: Harness) -> tuple[str, str, str]:
    found = find(h.host.last.conditions, ConditionType.TRAFFIC_STOPPED)
    assert found is not None
    return found.status, found.reason, found.message


def serving(h: Harness) -> dict[str, bool]:
    return {layer: h.world.state[layer]["serving"] for layer in ("frontend", "backend")}


def resume_steps(h: Harness) -> list[tuple[str | None, StepState]]:
    return [(t, state) for name, t, state in h.steps() if name == "resume-traffic"]


async def test_a_failure_after_stop_traffic_keeps_it_stopped_and_says_which_layers_and_how(
) -> None:  # fmt: skip
    h = failing_restore()

    assert await h.run() == Phase.PARTIALLY_FAILED

    status, reason, message = traffic_condition(h)
    assert (status, reason) == ("True", "KeptStopped")
    assert "still stopped: frontend, backend" in message
    assert RESUME_COMMAND in message
    assert serving(h) == {"frontend": False, "backend": False}
    assert resume_steps(h) == []
    report = next(iter(h.reports.reports.values()))
    assert "## Traffic still stopped" in report
    assert RESUME_COMMAND in report
    final = h.world.state["notices"][-1]
    assert final["kind"] == "finished"
    assert final["traffic_stopped"] == ["frontend", "backend"]
    assert RESUME_COMMAND in final["resume_hint"]


async def test_the_resume_annotation_on_the_finished_rollback_gives_each_layer_back() -> None:
    h = failing_restore()
    await h.run()
    h.host.resume = True

    assert await h.resume() == Phase.PARTIALLY_FAILED

    assert resume_steps(h) == [("frontend", StepState.SUCCEEDED), ("backend", StepState.SUCCEEDED)]
    assert serving(h) == {"frontend": True, "backend": True}
    status, reason, message = traffic_condition(h)
    assert (status, reason) == ("False", "Resumed")
    assert "frontend (resume-traffic), backend (resume-traffic)" in message
    assert "TrafficResumed" in h.host.reasons()
    report = list(h.reports.reports.values())[-1]
    assert "| resume-traffic | backend | Succeeded |" in report
    assert "## Traffic still stopped" not in report
    assert h.world.state["frontend"]["live"] == "dpl_new"  # the version it ran: not rolled back


async def test_a_resume_redone_after_a_restart_acts_once() -> None:
    h = failing_restore()
    await h.run()
    h.host.resume = True
    await h.resume()

    await h.resume()

    assert h.world.calls("frontend.resume_traffic") == 1
    assert h.world.calls("backend.resume_traffic") == 1
    assert len(resume_steps(h)) == 2


async def test_without_the_annotation_a_finished_rollback_leaves_traffic_stopped() -> None:
    h = failing_restore()
    await h.run()

    await h.resume()

    assert resume_steps(h) == []
    assert serving(h) == {"frontend": False, "backend": False}


async def test_failure_policy_resume_gives_traffic_back_before_the_report_and_the_last_notice(
) -> None:  # fmt: skip
    h = failing_restore(failurePolicy={"traffic": "resume"})

    assert await h.run() == Phase.PARTIALLY_FAILED

    names = [(name, target) for name, target, _ in h.steps()]
    assert names[-4:] == [
        ("resume-traffic", "frontend"), ("resume-traffic", "backend"),
        ("report", None), ("notify-finished", None),
    ]  # fmt: skip
    assert serving(h) == {"frontend": True, "backend": True}
    assert traffic_condition(h)[:2] == ("False", "Resumed")
    assert h.world.state["notices"][-1]["traffic_stopped"] == []


async def test_the_annotation_set_before_the_failure_gives_traffic_back_at_once() -> None:
    h = failing_restore()
    h.host.resume = True

    await h.run()

    assert resume_steps(h) == [("frontend", StepState.SUCCEEDED), ("backend", StepState.SUCCEEDED)]
    assert traffic_condition(h)[:2] == ("False", "Resumed")


async def test_an_abort_after_stop_traffic_keeps_traffic_stopped_too() -> None:
    h = Harness(mode="full")
    h.world.inject("database.safety_backup", {"kind": "retryable"})
    h.host.on_pause = ["abort"]  # while safety-backup waits to retry

    assert await h.run() == Phase.ABORTED

    assert traffic_condition(h)[:2] == ("True", "KeptStopped")
    assert serving(h) == {"frontend": False, "backend": False}


async def test_a_layer_that_served_no_traffic_when_planned_is_not_the_rollbacks_to_give_back(
) -> None:  # fmt: skip
    h = failing_restore()
    h.world.state["frontend"]["serving"] = False  # paused by someone before the rollback

    await h.run()

    status, _, message = traffic_condition(h)
    assert status == "True"
    assert "still stopped: backend." in message


async def test_a_full_rollback_that_succeeds_ends_with_traffic_resumed() -> None:
    h = Harness(mode="full")

    assert await h.run() == Phase.SUCCEEDED

    status, reason, message = traffic_condition(h)
    assert (status, reason) == ("False", "Resumed")
    assert "frontend (deploy-previous), backend (deploy-previous)" in message
    stopped_while_running = [
        find(s.conditions, ConditionType.TRAFFIC_STOPPED) for s in h.host.statuses
    ]
    assert any(c is not None and c.reason == "StoppedForRollback" for c in stopped_while_running)


async def test_a_rollback_that_never_stopped_traffic_has_no_traffic_condition() -> None:
    h = Harness()

    await h.run()

    assert find(h.host.last.conditions, ConditionType.TRAFFIC_STOPPED) is None
