"""Two Rollbacks of one policy's targets, created back to back, on the real operator process.

Claims: two applied back to back are one request made twice: the frontend goes back one
deployment, not two (the one that goes second leaves it alone, its steps Skipped naming the
other), while one applied after both ended is a new request and goes one further (Vercel and
Railway through the real adapters to their fakes); and a second whose plan fails while the
first is changing its target waits in Queued, never Failed against a state in motion, and ends
only once the first has ended (with nothing left to do: the first rolled that target back).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox import manifests
from sandbox.fakes.saas import serving
from tests.e2e.bed import Bed

pytestmark = pytest.mark.e2e
ENDED = {"Succeeded", "Failed", "PartiallyFailed", "Aborted"}


def _frontend_move(body: dict[str, Any]) -> tuple[str, str]:
    move = body["status"]["plan"]["frontend"]
    return move["from"], move["to"]


def _skipped_frontend(body: dict[str, Any]) -> list[str]:
    """The messages of the frontend steps, each of which must have been Skipped."""
    steps = [s for s in body["status"]["steps"] if s.get("target") == "frontend"]
    assert steps, body["status"]
    assert {s["state"] for s in steps} == {"Skipped"}, steps
    return [s["message"] for s in steps]


def test_two_rollbacks_applied_back_to_back_roll_the_frontend_back_once(bed: Bed) -> None:
    # each Vercel rollback job takes 6 s: both are applied before the first one's job ends
    with serving(history=3, job_seconds=6) as saas:
        bed.start(real=("frontend", "backend"))
        for secret in saas.secrets():
            bed.apply(secret)
        bed.apply(saas.policy())
        bed.apply(manifests.rollback("first", targets=["frontend"]))
        bed.apply(manifests.rollback("second", targets=["frontend"]))

        ended = {name: bed.wait_for(name, ENDED, timeout=60) for name in ("first", "second")}

        assert {b["status"]["phase"] for b in ended.values()} == {"Succeeded"}, ended
        assert saas.live_frontend() == saas.old  # N-1, not N-2
        moved = [n for n, b in ended.items() if b["status"]["plan"].get("frontend")]
        assert len(moved) == 1, {n: b["status"] for n, b in ended.items()}
        went, (other,) = moved[0], set(ended) - set(moved)
        assert _frontend_move(ended[went]) == (saas.live, saas.old)
        messages = _skipped_frontend(ended[other])
        assert all(f"already rolled back by {went} to {saas.old}" in m for m in messages)
        assert ended[other]["status"]["message"].startswith("Nothing to do:")
        assert "AlreadyRolledBack" in {e["reason"] for e in bed.events_for(other)}

        # one applied after both ended is a new request: it goes one deployment further back
        bed.apply(manifests.rollback("third", targets=["frontend"]))
        third = bed.wait_for("third", ENDED, timeout=60)
        assert third["status"]["phase"] == "Succeeded", third["status"]
        went_from, went_to = _frontend_move(third)
        assert went_from == saas.old
        assert went_to not in (saas.old, saas.live)
        assert saas.live_frontend() == went_to


def test_a_second_whose_plan_fails_while_the_first_runs_waits_in_the_queue(bed: Bed) -> None:
    # the first moves the frontend at once, then holds on the backend (Retry-After 6 s)
    bed.world().inject("backend.rollback", {"kind": "rate-limited", "retry_after": 6})
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("first"))
    deadline = time.monotonic() + 30
    while bed.world().state["frontend"]["live"] != "dpl_old":
        assert time.monotonic() < deadline, bed.logs()[-3000:]
        time.sleep(0.05)
    bed.apply(manifests.rollback("second", targets=["frontend"]))  # nothing earlier than dpl_old

    waiting = bed.wait_for("second", {"Queued", *ENDED})
    while waiting["status"].get("queuePosition") is None and time.monotonic() < deadline:
        waiting = bed.get("rollback", "second")
    assert waiting["status"]["phase"] == "Queued", waiting["status"]
    assert waiting["status"]["queuePosition"] == 1
    planned = bed.condition(waiting, "Planned")
    assert (planned["status"], planned["reason"]) == ("False", "PlanWaiting")
    assert "no earlier deployment" in planned["message"]
    assert bed.get("rollback", "first")["status"]["phase"] == "Running"

    first = bed.wait_for("first", ENDED)
    second = bed.wait_for("second", ENDED)
    assert first["status"]["phase"] == "Succeeded", first["status"]
    # the first rolled the frontend back: the second has nothing left to do, and never failed
    assert second["status"]["phase"] == "Succeeded", second["status"]
    assert all("already rolled back by first to dpl_old" in m for m in _skipped_frontend(second))
    assert second["status"]["finishedAt"] >= first["status"]["finishedAt"]
    assert bed.world().calls("frontend.rollback") == 1
