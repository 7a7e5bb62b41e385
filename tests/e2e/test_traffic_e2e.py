"""A full rollback that fails after stopping traffic, in the real operator process.

Claims: the rollback ends with condition TrafficStopped True (reason KeptStopped) naming each
stopped layer and the command that resumes it, the final notice says the same, and both layers
stay dark; `kubectl rollback resume-traffic NAME` on the finished rollback then gives each layer
back as a recorded resume-traffic step, the condition turns False with reason Resumed, the
phase stays what it was and the report shows the resume.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox import manifests
from tests.e2e.bed import Bed
from tests.e2e.test_plugin_e2e import kubectl_rollback

pytestmark = pytest.mark.e2e


def _wait_for_resumed(bed: Bed, name: str, timeout: float = 60.0) -> Any:
    """The rollback once it said TrafficResumed (after the condition and the report did)."""
    deadline = time.monotonic() + timeout
    while "TrafficResumed" not in {e["reason"] for e in bed.events_for(name)}:
        assert time.monotonic() < deadline, bed.logs()[-4000:]
        time.sleep(0.1)
    return bed.get("rollback", name)


def test_a_failed_full_rollback_says_traffic_is_stopped_until_resume_traffic_gives_it_back(
    bed: Bed,
) -> None:
    bed.world().inject("database.restore", {"kind": "permanent"})
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback(mode="full"))

    body = bed.wait_for("rb-1", {"Succeeded", "Failed", "PartiallyFailed", "Aborted"})
    held = bed.condition(body, "TrafficStopped")
    world = bed.world().state

    assert body["status"]["phase"] == "PartiallyFailed", body["status"]
    assert (held["status"], held["reason"]) == ("True", "KeptStopped")
    command = f"kubectl rollback resume-traffic rb-1 -n {bed.namespace}"
    assert "still stopped: frontend, backend" in held["message"]
    assert command in held["message"]
    assert (world["frontend"]["serving"], world["backend"]["serving"]) == (False, False)
    assert world["notices"][-1]["traffic_stopped"] == ["frontend", "backend"]
    assert command in world["notices"][-1]["resume_hint"]

    asked = kubectl_rollback(bed.cluster.kubeconfig, "-n", bed.namespace, "resume-traffic", "rb-1")
    assert asked.returncode == 0, asked.stderr
    body = _wait_for_resumed(bed, "rb-1")

    resumed = bed.condition(body, "TrafficStopped")
    steps = [(s["name"], s.get("target"), s["state"]) for s in body["status"]["steps"]]
    world = bed.world().state
    report = bed.get("configmap", "rb-1-report")["data"]["report.md"]
    assert body["status"]["phase"] == "PartiallyFailed"
    assert ("resume-traffic", "frontend", "Succeeded") in steps
    assert ("resume-traffic", "backend", "Succeeded") in steps
    assert (world["frontend"]["serving"], world["backend"]["serving"]) == (True, True)
    assert (resumed["status"], resumed["reason"]) == ("False", "Resumed")
    assert "| resume-traffic | backend | Succeeded |" in report
    assert "## Traffic still stopped" not in report
