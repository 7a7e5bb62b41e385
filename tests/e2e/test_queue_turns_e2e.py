"""Two Rollbacks of one policy's targets, created back to back, on the real operator process.

Claims: the second waits for the first and acts on the state the first left: planned again at
its turn, from the deployment the first made live (Vercel and Railway through the real adapters
to their fakes); and a second whose plan fails while the first is changing its target waits
in Queued, never Failed against a state in motion, and fails only once the first has ended.
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


def test_a_second_rollback_created_while_the_first_moves_the_frontend_acts_after_it(
    bed: Bed,
) -> None:
    # each Vercel rollback job takes 6 s: the second is created while the first's job runs
    with serving(history=3, job_seconds=6) as saas:
        bed.start(real=("frontend", "backend"))
        for secret in saas.secrets():
            bed.apply(secret)
        bed.apply(saas.policy())
        bed.apply(manifests.rollback("first", targets=["frontend"]))
        bed.wait_for("first", {"Running"})
        bed.apply(manifests.rollback("second", targets=["frontend"]))

        first = bed.wait_for("first", ENDED, timeout=60)
        second = bed.wait_for("second", ENDED, timeout=60)

        assert first["status"]["phase"] == "Succeeded", first["status"]
        assert second["status"]["phase"] == "Succeeded", second["status"]
        assert _frontend_move(first) == (saas.live, saas.old)
        went_from, went_to = _frontend_move(second)
        assert went_from == saas.old  # the state the first left, not the one it was changing
        assert went_to not in (saas.old, saas.live)
        assert saas.live_frontend() == went_to
        assert second["status"]["startedAt"] >= first["status"]["finishedAt"]


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
    assert second["status"]["phase"] == "Failed"  # against the state the first left: honest
    assert bed.condition(second, "Planned")["reason"] == "PlanFailed"
    ended = bed.condition(second, "Stalled")["lastTransitionTime"]  # turned True on failing
    assert ended >= first["status"]["finishedAt"]
    assert bed.world().calls("frontend.rollback") == 1
