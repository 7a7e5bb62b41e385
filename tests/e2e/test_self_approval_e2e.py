"""The operator refuses self-approval on its own, for clusters without the chart's admission
policy: the real operator process on the real API server, with no ValidatingAdmissionPolicy
in the namespace, so the annotations say whatever their author wrote.

A rollback whose `approved-by` names its `requested-by` stays `AwaitingApproval`, with the
Approved condition False (reason SelfApproval) and one Warning Event saying who may not
approve; no provider is called. Another person's approval then lets it run.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox import manifests
from tests.e2e.bed import Bed

pytestmark = pytest.mark.e2e
REQUESTED_BY = "rollback.mindmate.app/requested-by"
APPROVED_BY = "rollback.mindmate.app/approved-by"


def _requested_by(name: str, who: str) -> dict[str, Any]:
    body = manifests.rollback(name, requireApproval=True)
    body["metadata"]["annotations"] = {REQUESTED_BY: who}
    return body


def _self_approval_said(bed: Bed, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        body = bed.get("rollback", name)
        approved = bed.condition(body, "Approved")
        if approved["reason"] == "SelfApproval":
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"no SelfApproval condition: {body.get('status')}")
        time.sleep(0.1)


def test_a_rollback_approved_by_its_requester_waits_until_another_person_approves(
    bed: Bed,
) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(_requested_by("mine", "alice"))
    bed.wait_for("mine", {"AwaitingApproval"})
    bed.cluster.kubectl("annotate", "rollback/mine", f"{APPROVED_BY}=alice")
    waiting = _self_approval_said(bed, "mine")
    assert waiting["status"]["phase"] == "AwaitingApproval"
    approved = bed.condition(waiting, "Approved")
    assert approved["status"] == "False"
    assert "alice requested this rollback and cannot approve it" in approved["message"]
    assert "approvedBy" not in waiting["status"]
    refusals = [e for e in bed.events_for("mine") if e["reason"] == "SelfApproval"]
    assert len(refusals) == 1
    assert refusals[0]["type"] == "Warning"
    assert bed.world().state["calls"] == {}

    bed.cluster.kubectl("annotate", "--overwrite", "rollback/mine", f"{APPROVED_BY}=bob")
    done = bed.wait_for("mine", {"Succeeded", "Failed", "PartiallyFailed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["approvedBy"] == "bob"
    assert bed.condition(done, "Approved")["reason"] == "Approved"
