"""Crash safety: SIGKILL the operator at every step boundary of a full rollback, start it again.

The fakes kill the operator process themselves, exactly before or after a provider call (see
`FakeWorld.crash_at`), so each boundary is hit precisely. After the restart the rollback must
finish, and no completed destructive step may have run twice: the fakes count every change.
"""

from __future__ import annotations

import pytest

from sandbox import manifests
from tests.e2e.bed import Bed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DESTRUCTIVE = [
    "frontend.stop_traffic",
    "backend.stop_traffic",
    "database.safety_backup",
    "database.restore",
    "storage.restore",
    "frontend.rollback",
    "frontend.resume_traffic",
    "backend.rollback",
    "backend.resume_traffic",
]
# (point, passes to let through first): every provider call of a full rollback, in order.
CALLS = [
    ("database.plan", 0),
    ("notify.fake", 0),
    *[(op, 0) for op in DESTRUCTIVE],
    ("verify", 0),
    ("notify.fake", 1),
]
POINTS = [
    pytest.param(f"{when}:{op}", skip, id=f"{when}-{op}{'-2nd' if skip else ''}")
    for op, skip in CALLS
    for when in ("before", "after")
    if not (when == "after" and op in ("database.plan", "verify"))
]


@pytest.mark.parametrize(("point", "skip"), POINTS)
def test_full_rollback_survives_sigkill_and_never_repeats_a_finished_step(
    bed: Bed, point: str, skip: int
) -> None:
    bed.world().crash_at(point, skip)
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("crashy", mode="full"))
    assert bed.wait_exit(timeout=30) == -9, bed.logs()[-3000:]
    assert bed.world().state["crashed"] == point
    bed.start()
    body = bed.wait_for("crashy", {"Succeeded", "Failed", "PartiallyFailed"})
    assert body["status"]["phase"] == "Succeeded", body["status"]
    world = bed.world()
    for op in DESTRUCTIVE:
        assert world.calls(op) == 1, (op, world.state["calls"])
    keys = [n["key"] for n in world.state["notices"]]
    assert len(keys) == len(set(keys)) == 2
    assert world.state["database"]["contents"] == "restored from backup_20240101.dump"
    redone = [s for s in body["status"]["steps"] if s["attempts"] > 1]
    if point.startswith("after:") and point.split(":")[1] in DESTRUCTIVE:
        assert redone, "the interrupted step must be redone and say so"
