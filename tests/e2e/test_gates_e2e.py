"""Approval and the queue are never skipped: bad input on a planned rollback, seen at a start of
the real operator process, keeps its phase (Stalled, InvalidSpec) and a fix resumes at the gate."""

from __future__ import annotations

import time

import pytest

from sandbox import manifests
from tests.e2e.bed import Bed, Manifest

pytestmark = pytest.mark.e2e
MUTATING = ("stop_traffic", "rollback", "resume_traffic", "safety_backup", "restore")


def _mutating_requests(bed: Bed) -> dict[str, int]:
    requests: dict[str, int] = bed.world().state["requests"]
    return {op: n for op, n in requests.items() if op.rsplit(".", 1)[-1] in MUTATING}


def _wait_stalled(bed: Bed, name: str, reason: str | None, timeout: float = 30.0) -> Manifest:
    """Poll until Stalled says `reason` (None: until Stalled is no longer True)."""
    deadline = time.monotonic() + timeout
    while True:
        body = bed.get("rollback", name)
        found = [c for c in body.get("status", {}).get("conditions", []) if c["type"] == "Stalled"]
        stalled = found[0] if found else {}
        if reason is None and stalled.get("status") != "True":
            return body
        if reason is not None and stalled.get("status") == "True" and stalled["reason"] == reason:
            return body
        assert time.monotonic() < deadline, f"{name}: {body.get('status')}\n{bed.logs()[-4000:]}"
        time.sleep(0.1)


def _delete_while_the_operator_is_down(bed: Bed, kind: str, name: str) -> None:
    """Delete an object for good while no operator runs (its finalizer is the operator's, so
    the one who deletes it clears that too): the next operator never sees it."""
    bed.cluster.kubectl("delete", kind, name, "--wait=false")
    patch = '{"metadata":{"finalizers":null}}'
    bed.cluster.kubectl("patch", kind, name, "--type=merge", "-p", patch, check=False)
    deadline = time.monotonic() + 30
    while bed.cluster.kubectl("get", kind, name, check=False).returncode == 0:
        assert time.monotonic() < deadline, f"{kind}/{name} is still there"
        time.sleep(0.2)


def test_a_rollback_awaiting_approval_whose_policy_vanished_keeps_waiting_once_it_is_back(
    bed: Bed,
) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("gated", requireApproval=True))
    bed.wait_for("gated", {"AwaitingApproval"})
    bed.stop()
    _delete_while_the_operator_is_down(bed, "rollbackpolicy", "mindmate")
    bed.start()
    stalled = _wait_stalled(bed, "gated", "InvalidSpec")
    assert stalled["status"]["phase"] == "AwaitingApproval"
    assert "mindmate" in stalled["status"]["message"]
    bed.apply(manifests.policy())
    fixed = _wait_stalled(bed, "gated", None)
    time.sleep(2.0)  # long enough for a skipped gate to start the steps
    waiting = bed.get("rollback", "gated")
    assert waiting["status"]["phase"] == "AwaitingApproval", fixed["status"]
    assert bed.condition(waiting, "Approved")["status"] == "False"
    assert bed.condition(waiting, "Reconciling")["reason"] == "AwaitingApproval"
    assert _mutating_requests(bed) == {}
    bed.cluster.kubectl("annotate", "rollback/gated", "rollback.mindmate.app/approved-by=alice")
    done = bed.wait_for("gated", {"Succeeded", "Failed", "PartiallyFailed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["approvedBy"] == "alice"
