"""A RollbackPolicy's historyLimit, in the real operator process on the real API server.

Claim: with `historyLimit: 1` the policy keeps its newest finished automatic Rollback and
deletes the older ones, says so in an Event, and their reports outlive them; a manual Rollback
and an automatic one that has not finished (waiting for approval, the oldest of all) stay.
"""

from __future__ import annotations

import json
import time

import pytest

from sandbox import manifests
from tests.e2e.bed import Bed
from tests.e2e.test_deletion_e2e import ENDED, KEPT_FOR, ROLLBACKS, _automatic, _exists

pytestmark = pytest.mark.e2e
HISTORY = [f"v{i}" for i in range(1, 7)]


def _kept_reports(bed: Bed) -> set[str]:
    """Names of the Rollbacks whose report outlives them."""
    found = json.loads(
        bed.cluster.kubectl(
            "get", "configmap", "-l", "rollback.mindmate.app/kept-report=true", "-o", "json"
        ).stdout
    )["items"]
    return {c["metadata"]["annotations"][KEPT_FOR] for c in found}


def test_history_limit_deletes_older_finished_automatic_rollbacks_and_keeps_their_reports(
    bed: Bed,
) -> None:
    bed.edit_world(
        frontend={"history": HISTORY, "live": HISTORY[-1], "serving": True},
        backend={"history": HISTORY, "live": HISTORY[-1], "serving": True},
    )
    bed.start()
    bed.apply(manifests.policy(historyLimit=1, evaluationInterval="1s"))
    policy = bed.get("rollbackpolicy", "mindmate")
    waiting = _automatic("auto-0", policy)
    waiting["spec"]["requireApproval"] = True
    bed.apply(waiting)
    bed.wait_for("auto-0", {"AwaitingApproval"})
    for name in ("auto-1", "auto-2", "auto-3"):
        bed.apply(_automatic(name, policy))
        bed.wait_for(name, ENDED)
    bed.apply(manifests.rollback("manual-1"))
    bed.wait_for("manual-1", ENDED)

    deadline = time.monotonic() + 30
    while _exists(bed, ROLLBACKS, "auto-1") or _exists(bed, ROLLBACKS, "auto-2"):
        assert time.monotonic() < deadline, bed.logs()[-4000:]
        time.sleep(0.2)
    time.sleep(2)  # another round or two: nothing more goes

    for kept in ("auto-0", "auto-3", "manual-1"):
        assert _exists(bed, ROLLBACKS, kept), kept
    assert {"auto-1", "auto-2"} <= _kept_reports(bed)
    pruned = [e for e in bed.events_for("mindmate") if e["reason"] == "HistoryPruned"]
    assert pruned, [e["reason"] for e in bed.events_for("mindmate")]
    assert "historyLimit 1" in pruned[0]["message"]
