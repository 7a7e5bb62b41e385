"""High availability: two operator replicas peered through kopf, and only one of them acts.

Both replicas run against the same real API server and share the fakes' world file, which records
every provider call and which replica made it (`tests.e2e.shared_world`). The tests show:
- the standby stays paused while the active replica runs a full rollback: every step and
  every notification happens once, all by the active replica (with explicit priorities, and
  with none, as the chart runs them: then the earlier start ranks higher);
- SIGKILL of the active replica exactly at a provider call: the standby resumes once kopf's
  peering lifetime has passed without a keep-alive and finishes the rollback, repeating no
  finished step;
- SIGTERM in the middle of a (hanging) call: the replica withdraws from the peering object,
  kopf cancels its rollback daemon, the standby takes over at once;
- a higher-priority replica arriving mid-rollback: the running one pauses, kopf cancels its
  daemon in its hanging call, and it makes no call after the other one's first.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from sandbox import manifests
from tests.e2e import peering
from tests.e2e.bed import WATCHED, Bed
from tests.e2e.test_crash import DESTRUCTIVE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ACTIVE, STANDBY = "operator-a", "operator-b"
PAUSED = "Pausing operations in favour of"
RESUMED = "Resuming operations after the pause"


def _peered(bed: Bed, priorities: tuple[int | None, int | None] = (100, 50)) -> None:
    """Start the active replica, wait for its watch, then the standby, until it has peered.

    With a mandatory peering object kopf starts a replica paused and resumes it only when the
    object shows no live peer of higher or equal priority; the standby's first look already
    shows the active one's keep-alive, so it stays paused (silently: kopf logs only changes).
    """
    peering.install(bed)
    bed.start_replica(ACTIVE, priorities[0], peering=peering.PEERING)
    _wait_for_watch(bed)
    bed.start_replica(STANDBY, priorities[1], peering=peering.PEERING)
    peering.wait_for_peers(bed, {ACTIVE, STANDBY})
    ranks = peering.peers(bed)
    assert ranks[ACTIVE]["priority"] > ranks[STANDBY]["priority"], ranks


def _wait_for_watch(bed: Bed) -> None:
    bed.wait_for_watch(WATCHED, timeout=60)


def _actors(bed: Bed) -> dict[str, list[str]]:
    actors: dict[str, list[str]] = bed.world().state.get("actors", {})
    return actors


def _assert_each_once(bed: Bed, body: dict[str, Any]) -> None:
    assert body["status"]["phase"] == "Succeeded", body["status"]
    world = bed.world()
    for op in DESTRUCTIVE:
        assert world.calls(op) == 1, (op, world.state["calls"])
    keys = [n["key"] for n in world.state["notices"]]
    assert len(keys) == len(set(keys)) == 2, world.state["notices"]
    assert world.calls("notify.fake") == 2
    assert world.state["database"]["contents"] == "restored from backup_20240101.dump"


# Explicit priorities; and none, as the chart runs them: then the earlier start ranks higher.
@pytest.mark.parametrize("priorities", [(100, 50), (None, None)], ids=["explicit", "by-start"])
def test_two_peered_replicas_do_each_step_and_notification_once(
    bed: Bed, priorities: tuple[int | None, int | None]
) -> None:
    _peered(bed, priorities)
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("ha-full", mode="full"))
    body = bed.wait_for("ha-full", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=60)
    _assert_each_once(bed, body)
    actors = _actors(bed)
    assert set(actors) >= {*DESTRUCTIVE, "notify.fake", "database.plan", "verify"}
    assert {a for calls in actors.values() for a in calls} == {ACTIVE}, actors
    assert all(s["attempts"] == 1 for s in body["status"]["steps"]), body["status"]["steps"]
    standby_log = bed.replica_log(STANDBY).read_text()
    assert RESUMED not in standby_log
    assert "ended in" not in standby_log
    assert bed.replicas[STANDBY].poll() is None  # alive, and paused all along


FAILOVER_POINTS = ["after:database.restore", "before:frontend.rollback", "after:notify.fake"]


@pytest.mark.parametrize("point", FAILOVER_POINTS)
def test_standby_takes_over_when_the_active_replica_dies_mid_rollback(bed: Bed, point: str) -> None:
    bed.world().crash_at(point)
    _peered(bed)
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("ha-failover", mode="full"))
    assert bed.replicas[ACTIVE].wait(timeout=60) == -9, bed.logs()[-4000:]
    assert bed.world().state["crashed"] == point
    peering.wait_for_log(bed, STANDBY, RESUMED)  # once the dead one's keep-alive expired
    body = bed.wait_for("ha-failover", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=60)
    _assert_each_once(bed, body)
    actors = _actors(bed)
    op = point.split(":")[1]
    at = DESTRUCTIVE.index(op) if op in DESTRUCTIVE else 0
    for earlier in DESTRUCTIVE[:at]:  # finished before the crash: the standby never touched them
        assert actors[earlier] == [ACTIVE], (earlier, actors)
    for later in DESTRUCTIVE[at + 1 :]:  # not reached by the dead one: all the standby's
        assert actors[later] == [STANDBY], (later, actors)
    if op in DESTRUCTIVE:  # the interrupted call: looked at again by the standby, not redone
        assert actors[op] == [ACTIVE, STANDBY], (op, actors)
    assert actors["verify"] == [STANDBY], actors
    assert ACTIVE not in peering.peers(bed)  # the survivor removed the dead one's keep-alive


def test_an_outranked_replica_pauses_and_its_rollback_daemon_stops_mid_call(bed: Bed) -> None:
    peering.install(bed)
    bed.edit_world(hold={STANDBY: "backend.stop_traffic"})  # this call of the standby hangs
    bed.start_replica(STANDBY, 50, peering=peering.PEERING)
    _wait_for_watch(bed)
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("ha-preempt", mode="full"))
    _wait_for_state(bed, "held", [[STANDBY, "backend.stop_traffic"]])
    bed.start_replica(ACTIVE, 100, peering=peering.PEERING)
    peering.wait_for_log(bed, STANDBY, PAUSED)
    body = bed.wait_for("ha-preempt", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=60)
    _assert_each_once(bed, body)
    world = bed.world()
    # kopf cancelled the paused replica's daemon in the hanging call; it made no call after.
    assert world.state["abandoned"] == [[STANDBY, "backend.stop_traffic"]]
    order = [actor for actor, _ in world.state["order"]]
    first_active = order.index(ACTIVE)
    assert STANDBY in order[:first_active], order
    assert STANDBY not in order[first_active:], order
    actors = world.state["actors"]
    assert actors["frontend.stop_traffic"] == [STANDBY]  # recorded done: not looked at again
    assert actors["backend.stop_traffic"] == [ACTIVE]
    assert bed.replicas[STANDBY].poll() is None  # paused, not dead


def test_a_replica_stopped_with_sigterm_mid_call_withdraws_and_the_standby_takes_over(
    bed: Bed,
) -> None:
    bed.edit_world(hold={ACTIVE: "database.restore"})  # the active replica's restore hangs
    _peered(bed)
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("ha-handover", mode="full"))
    _wait_for_state(bed, "held", [[ACTIVE, "database.restore"]])
    bed.replicas[ACTIVE].send_signal(signal.SIGTERM)  # a rolling update or a drained node
    assert bed.replicas[ACTIVE].wait(timeout=60) == 0, bed.logs()[-4000:]
    assert ACTIVE not in peering.peers(bed)  # it withdrew: no waiting for its lifetime
    peering.wait_for_log(bed, STANDBY, RESUMED)
    body = bed.wait_for("ha-handover", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=60)
    _assert_each_once(bed, body)
    world = bed.world()
    assert world.state["abandoned"] == [[ACTIVE, "database.restore"]]
    assert world.state["actors"]["database.restore"] == [STANDBY]
    order = [actor for actor, _ in world.state["order"]]
    first_standby = order.index(STANDBY)
    assert ACTIVE in order[:first_standby], order
    assert ACTIVE not in order[first_standby:], order


def _wait_for_state(bed: Bed, key: str, value: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while bed.world().state.get(key) != value:
        assert time.monotonic() < deadline, f"{key} never {value}:\n{bed.logs()[-4000:]}"
        time.sleep(0.05)
