"""Deleting things mid-flight, in the real operator process on the real API server.

Claims:
- a Rollback deleted while it runs is aborted the safe way before it goes: the step in flight
  finishes (never left half done), steps not started are skipped, the final notice says
  Aborted, and its report outlives it in a ConfigMap that nothing owns;
- a Rollback that left traffic stopped (`failurePolicy.traffic: keepStopped`) is not let go
  while it is stopped: the deletion waits, a Warning Event says which layers and how to resume,
  and `kubectl rollback resume-traffic` gives traffic back and lets the deletion complete;
- a RollbackPolicy deleted (or pruned) while one of its automatic Rollbacks runs waits for it,
  and that Rollback, deleted by the garbage collector's cascade, runs to its end instead of
  being aborted. No controller-manager runs beside the test API server, so the test deletes
  the dependent itself, as the garbage collector does with foreground propagation.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from rollback_operator.api import API_VERSION
from sandbox import manifests
from tests.e2e.bed import Bed
from tests.e2e.test_plugin_e2e import kubectl_rollback

pytestmark = pytest.mark.e2e
ROLLBACKS = "rollbacks.rollback.mindmate.app"
POLICIES = "rollbackpolicies.rollback.mindmate.app"
KEPT_FOR = "rollback.mindmate.app/rollback"
ENDED = {"Succeeded", "Failed", "PartiallyFailed", "Aborted"}


def _exists(bed: Bed, resource: str, name: str) -> bool:
    return bed.cluster.kubectl("get", resource, name, check=False).returncode == 0


def _wait_gone(bed: Bed, resource: str, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _exists(bed, resource, name):
        assert time.monotonic() < deadline, f"{resource}/{name} still there\n{bed.logs()[-4000:]}"
        time.sleep(0.1)


def _wait_step_running(bed: Bed, name: str, step: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        steps = bed.get("rollback", name).get("status", {}).get("steps", [])
        if any(s["name"] == step and s["state"] == "Running" for s in steps):
            return
        assert time.monotonic() < deadline, f"{step} never ran\n{bed.logs()[-4000:]}"
        time.sleep(0.02)


def _kept_report(bed: Bed, name: str) -> dict[str, Any]:
    """The report ConfigMap that outlives Rollback `name`."""
    found = json.loads(
        bed.cluster.kubectl(
            "get", "configmap", "-l", "rollback.mindmate.app/kept-report=true", "-o", "json"
        ).stdout
    )["items"]
    mine = [c for c in found if c["metadata"]["annotations"][KEPT_FOR] == name]
    assert len(mine) == 1, [c["metadata"]["name"] for c in found]
    kept: dict[str, Any] = mine[0]
    return kept


def _reasons(bed: Bed, name: str) -> list[str]:
    return [e["reason"] for e in bed.events_for(name)]


def test_a_running_rollback_deleted_is_aborted_the_safe_way_and_its_report_outlives_it(
    bed: Bed,
) -> None:
    bed.edit_world(latency=2.0)  # each provider call: time enough to delete it mid-call
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("doomed"))
    _wait_step_running(bed, "doomed", "instant-rollback")

    bed.cluster.kubectl("delete", ROLLBACKS, "doomed", "--wait=false")
    _wait_gone(bed, ROLLBACKS, "doomed")

    world = bed.world().state
    notices = [(n["kind"], n["phase"]) for n in world["notices"]]
    assert notices == [("started", "Running"), ("finished", "Aborted")], notices
    # the step in flight finished: both layers moved, none left half done
    assert (world["frontend"]["live"], world["backend"]["live"]) == ("dpl_old", "d-old")
    assert world["requests"].get("verify", 0) == 0, world["requests"]  # not started: skipped
    kept = _kept_report(bed, "doomed")
    assert not kept["metadata"].get("ownerReferences"), kept["metadata"]
    report = kept["data"]["report.md"]
    assert "Outcome: **Aborted**" in report
    assert "| verify | - | Skipped |" in report
    assert {"AbortRequested", "Aborted"} <= set(_reasons(bed, "doomed"))


def test_a_rollback_that_left_traffic_stopped_is_let_go_only_once_traffic_is_back(
    bed: Bed,
) -> None:
    bed.world().inject("database.restore", {"kind": "permanent"})
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("dark", mode="full"))
    bed.wait_for("dark", ENDED)

    bed.cluster.kubectl("delete", ROLLBACKS, "dark", "--wait=false")
    deadline = time.monotonic() + 30
    while "DeletionHeld" not in _reasons(bed, "dark"):
        assert time.monotonic() < deadline, bed.logs()[-4000:]
        time.sleep(0.1)
    time.sleep(2)  # the hold lasts: it is not let go a moment later

    body = bed.get("rollback", "dark")
    held = next(e for e in bed.events_for("dark") if e["reason"] == "DeletionHeld")
    world = bed.world().state
    assert body["metadata"].get("deletionTimestamp"), body["metadata"]
    assert (world["frontend"]["serving"], world["backend"]["serving"]) == (False, False)
    assert "frontend, backend" in held["message"]
    assert "kubectl rollback resume-traffic dark" in held["message"]

    asked = kubectl_rollback(bed.cluster.kubeconfig, "-n", bed.namespace, "resume-traffic", "dark")
    assert asked.returncode == 0, asked.stderr
    _wait_gone(bed, ROLLBACKS, "dark")

    world = bed.world().state
    assert (world["frontend"]["serving"], world["backend"]["serving"]) == (True, True)
    report = _kept_report(bed, "dark")["data"]["report.md"]
    assert "| resume-traffic | backend | Succeeded |" in report


def _automatic(name: str, policy: dict[str, Any]) -> dict[str, Any]:
    """A Rollback as a policy creates it: labelled, and owned by the policy."""
    body = manifests.rollback(name)
    body["metadata"]["labels"] = {
        "rollback.mindmate.app/trigger": "policy",
        "rollback.mindmate.app/policy": policy["metadata"]["name"],
    }
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": API_VERSION, "kind": "RollbackPolicy", "name": policy["metadata"]["name"],
         "uid": policy["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    ]  # fmt: skip
    return body


def test_a_policy_pruned_mid_rollback_waits_and_its_automatic_rollback_runs_to_its_end(
    bed: Bed,
) -> None:
    bed.edit_world(latency=0.5)
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(_automatic("auto-1", bed.get("rollbackpolicy", "mindmate")))
    _wait_step_running(bed, "auto-1", "instant-rollback")

    bed.cluster.kubectl("delete", POLICIES, "mindmate", "--wait=false")
    bed.cluster.kubectl("delete", ROLLBACKS, "auto-1", "--wait=false")  # the cascade
    time.sleep(1)
    assert bed.get("rollbackpolicy", "mindmate")["metadata"].get("deletionTimestamp")
    _wait_gone(bed, ROLLBACKS, "auto-1")
    _wait_gone(bed, POLICIES, "mindmate")

    world = bed.world().state
    notices = [(n["kind"], n["phase"]) for n in world["notices"]]
    assert notices == [("started", "Running"), ("finished", "Succeeded")], notices
    assert world["requests"].get("verify", 0) >= 1, world["requests"]
    assert "DeletionWaiting" in _reasons(bed, "mindmate")
    assert "Outcome: **Succeeded**" in _kept_report(bed, "auto-1")["data"]["report.md"]
