"""A step cut short (the operator stopped, or kopf cancelled the run of a deleted Rollback)
and then aborted is finished, never skipped half done; and which automatic Rollbacks a
policy's historyLimit lets go."""

from __future__ import annotations

from rollback_operator.api.rollback import Phase, StepState
from rollback_operator.reconcile import history
from rollback_operator.reconcile.queue import RollbackEntry
from tests.unit.test_engine import Harness


async def test_a_step_cut_short_then_aborted_is_finished_and_the_rest_skipped() -> None:
    h = Harness()
    h.world.inject("frontend.rollback", {"kind": "retryable"})
    h.host.stop_after_pauses = 1  # the operator stops while the step waits to retry
    assert await h.run() is None
    assert ("instant-rollback", "frontend", StepState.RUNNING) in h.steps()

    h.host.abort, h.host.stop_after_pauses = True, None
    assert await h.resume() == Phase.ABORTED
    states = {(n, t): s for n, t, s in h.steps()}
    assert states[("instant-rollback", "frontend")] == StepState.SUCCEEDED
    assert states[("verify", None)] == StepState.SKIPPED
    assert h.world.state["frontend"]["live"] == "dpl_old"
    assert [n["phase"] for n in h.world.state["notices"]] == ["Running", "Aborted"]


async def test_a_notice_resumed_after_the_report_tells_the_outcome() -> None:
    h = Harness()
    assert await h.run() == Phase.SUCCEEDED
    # as the record stands when the operator stops after the report, before the last notice
    cut = h.host.last.model_copy(deep=True)
    cut.phase, cut.finished_at = Phase.VERIFYING, None
    last = next(s for s in cut.steps if s.name == "notify-finished")
    last.state, last.external_ids, last.finished_at = StepState.RUNNING, {}, None
    h.host.statuses.append(cut)
    h.world.state["notices"].pop()
    assert await h.resume() == Phase.SUCCEEDED
    assert [n["phase"] for n in h.world.state["notices"]] == ["Running", "Succeeded"]


def _entry(
    name: str, phase: Phase, *, automatic: bool = True, stopped: bool = False
) -> RollbackEntry:
    return RollbackEntry(
        uid=f"uid-{name}", name=name, created=f"2026-01-01T00:00:0{name[-1]}Z", phase=phase,
        targets=frozenset({"frontend"}), automatic=automatic, traffic_stopped=stopped,
    )  # fmt: skip


def test_history_limit_chooses_the_oldest_finished_automatic_rollbacks_only() -> None:
    entries = [
        _entry("a1", Phase.SUCCEEDED),
        _entry("a2", Phase.RUNNING),
        _entry("a3", Phase.FAILED, stopped=True),
        _entry("a4", Phase.ABORTED),
        _entry("m5", Phase.SUCCEEDED, automatic=False),
        _entry("a6", Phase.PARTIALLY_FAILED),
    ]
    assert [e.name for e in history.beyond_limit(entries, 1)] == ["a1", "a4"]
    assert [e.name for e in history.beyond_limit(entries, 0)] == ["a1", "a4", "a6"]
    assert history.beyond_limit(entries, 5) == []
    assert history.beyond_limit(entries, None) == []
