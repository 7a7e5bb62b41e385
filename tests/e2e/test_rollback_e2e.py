"""The real operator against the real API server: examples, gates, queue, bad input, kubectl."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from sandbox import manifests
from sandbox.kube.cluster import REPO_ROOT
from tests.e2e.bed import Bed
from tests.invalid_manifests import POLICY_CASES, ROLLBACK_CASES, Case

pytestmark = pytest.mark.e2e
ESSENCE = "rollback.mindmate.app/last-handled-configuration"
MUTATING = ("stop_traffic", "rollback", "resume_traffic", "safety_backup", "restore")


def _reasons(bed: Bed, name: str) -> set[str]:
    return {e["reason"] for e in bed.events_for(name)}


def _mutating_requests(bed: Bed) -> dict[str, int]:
    requests: dict[str, int] = bed.world().state["requests"]
    return {op: n for op, n in requests.items() if op.rsplit(".", 1)[-1] in MUTATING}


def test_quick_rollback_example_reaches_ready_and_kubectl_wait_sees_it(bed: Bed) -> None:
    bed.start()
    bed.cluster.apply_file(REPO_ROOT / "examples" / "policy.yaml")
    bed.cluster.apply_file(REPO_ROOT / "examples" / "quick-rollback.yaml")
    bed.cluster.kubectl(
        "wait", "--for=condition=Ready", "rollback/high-error-rates", "--timeout=30s"
    )
    body = bed.get("rollback", "high-error-rates")
    assert body["status"]["phase"] == "Succeeded"
    assert body["status"]["plan"]["frontend"] == {
        "from": "dpl_new",
        "to": "dpl_old",
        "serving": True,
    }
    world = bed.world()
    assert world.state["frontend"]["live"] == "dpl_old"
    assert world.state["backend"]["live"] == "d-old"
    report = bed.get("configmap", "high-error-rates-report")
    assert f"Rollback report: {bed.namespace}/high-error-rates" in report["data"]["report.md"]
    deadline = time.monotonic() + 15  # kopf posts an Event after the write it follows
    while not {"Running", "Succeeded"} <= (reasons := _reasons(bed, "high-error-rates")):
        assert time.monotonic() < deadline, reasons  # the start and the end
        time.sleep(0.2)
    assert not reasons & {"Planning", "Verifying", "StepSucceeded"}  # the status says those
    # kopf's record of the last configuration it handled is for handlers of creation and change:
    # a Rollback has none, so kopf's only write to it is the finalizer; a policy keeps it
    assert ESSENCE not in body["metadata"].get("annotations", {})
    assert ESSENCE in bed.get("rollbackpolicy", "mindmate")["metadata"]["annotations"]


def test_full_rollback_waits_for_approval_then_runs_every_step(bed: Bed) -> None:
    bed.start()
    bed.cluster.apply_file(REPO_ROOT / "examples" / "policy.yaml")
    bed.cluster.apply_file(REPO_ROOT / "examples" / "full-rollback.yaml")
    waiting = bed.wait_for("data-corruption", {"AwaitingApproval"})
    assert bed.condition(waiting, "Approved")["status"] == "False"
    assert _mutating_requests(bed) == {}
    bed.cluster.kubectl(
        "annotate", "rollback/data-corruption", "rollback.mindmate.app/approved-by=alice"
    )
    done = bed.wait_for("data-corruption", {"Succeeded", "Failed", "PartiallyFailed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["approvedBy"] == "alice"
    assert [s["state"] for s in done["status"]["steps"]] == ["Succeeded"] * 11
    assert bed.world().state["database"]["contents"] == "restored from backup_20240101.dump"


def test_dry_run_ends_planned_and_ready_without_a_mutating_call(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("plan-only", mode="full", dryRun=True))
    body = bed.wait_for("plan-only", {"Planned", "Failed"})
    assert body["status"]["phase"] == "Planned"
    assert bed.condition(body, "Ready")["status"] == "True"
    assert bed.condition(body, "Planned")["status"] == "True"
    assert body["status"]["plan"]["database"]["backup"] == "backup_20240101.dump"
    assert _mutating_requests(bed) == {}


def test_abort_annotation_stops_a_rollback_waiting_for_approval(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("to-abort", requireApproval=True))
    bed.wait_for("to-abort", {"AwaitingApproval"})
    bed.cluster.kubectl("annotate", "rollback/to-abort", "rollback.mindmate.app/abort=true")
    body = bed.wait_for("to-abort", {"Aborted", "Succeeded"})
    assert body["status"]["phase"] == "Aborted"
    assert bed.condition(body, "Stalled")["status"] == "True"
    assert _mutating_requests(bed) == {}


def test_second_rollback_of_the_same_targets_queues_until_the_first_ends(bed: Bed) -> None:
    frontend = {"history": ["dpl_older", "dpl_old", "dpl_new"], "live": "dpl_new", "serving": True}
    bed.edit_world(latency=0.3, frontend=frontend)
    # the first holds before changing the frontend (Retry-After 5 s), however slow the machine:
    # the second plans while the first has not moved it; at its turn the first has rolled it
    # back, and the second, the same request made twice, leaves it there
    bed.world().inject("frontend.rollback", {"kind": "rate-limited", "retry_after": 5})
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("first"))
    bed.wait_for("first", {"Running"})
    bed.apply(manifests.rollback("second", targets=["frontend"]))
    queued = bed.wait_for("second", {"Queued"})
    deadline = time.monotonic() + 10
    while queued["status"].get("queuePosition") is None and time.monotonic() < deadline:
        queued = bed.get("rollback", "second")
    assert queued["status"]["queuePosition"] == 1
    assert queued["status"]["plan"]["frontend"]["from"] == "dpl_new"
    first = bed.wait_for("first", {"Succeeded"})
    second = bed.wait_for("second", {"Succeeded"})
    assert second["status"]["finishedAt"] >= first["status"]["finishedAt"]
    assert "startedAt" not in second["status"]  # nothing left to run: it never started
    assert second["status"]["message"].startswith("Nothing to do: frontend: already rolled back")
    assert "frontend" not in second["status"]["plan"]
    assert bed.world().state["frontend"]["live"] == "dpl_old"  # not dpl_older
    left = [s for s in second["status"]["steps"] if s.get("target") == "frontend"]
    assert [s["state"] for s in left] == ["Skipped"]
    assert left[0]["message"].startswith("frontend: already rolled back by first to dpl_old")
    assert "AlreadyRolledBack" in {e["reason"] for e in bed.events_for("second")}


def test_spec_edit_after_the_start_is_refused_with_a_condition(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("edited", requireApproval=True))
    bed.wait_for("edited", {"AwaitingApproval"})
    bed.apply(manifests.rollback("edited", requireApproval=True, reason="changed my mind"))
    bed.cluster.kubectl("annotate", "rollback/edited", "rollback.mindmate.app/approved-by=bob")
    body = bed.wait_for("edited", {"Succeeded"})
    assert bed.condition(body, "SpecChangeRefused")["status"] == "True"
    assert body["status"]["acceptedGeneration"] == 1


def _admitted(bed: Bed, case: Case, manifest: dict[str, Any]) -> bool:
    """Apply an invalid manifest: True if the API server admitted it (the operator must then
    refuse it); a refusal must come from the CRD's own checks. Every case that the table says
    the schema refuses must be refused; the server's CEL rules may refuse more."""
    done = bed.cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
    if done.returncode == 0:
        assert not case.schema, f"{case.id}: the API server admitted it"
        return True
    assert "is invalid" in done.stderr or "strict decoding error" in done.stderr, done.stderr
    return False


def _invalid_objects(bed: Bed) -> tuple[list[tuple[str, str]], list[str]]:
    """Apply every invalid manifest in the bed's namespace: rollbacks as they are, policies
    with a rollback that refers to them. Returns the rollbacks the operator must stall, with
    the field their condition must name, and the policies it must stall."""
    stall: list[tuple[str, str]] = []
    policies: list[str] = []
    for case in ROLLBACK_CASES:
        manifest = {**case.manifest, "metadata": {"name": f"bad-{case.id}"}}
        if _admitted(bed, case, manifest):
            stall.append((case.field, f"bad-{case.id}"))
    for case in POLICY_CASES:
        policy = {**case.manifest, "metadata": {"name": f"pol-{case.id}"}}
        if _admitted(bed, case, policy):
            bed.apply(manifests.rollback(f"bad-{case.id}", policyRef={"name": f"pol-{case.id}"}))
            stall.append((case.field, f"bad-{case.id}"))
            policies.append(f"pol-{case.id}")
    bed.apply(manifests.rollback("bad-unknown-policy", policyRef={"name": "nope"}))
    bed.apply(manifests.policy("frontless", targets={"frontend": None}))
    frontless: dict[str, Any] = {"targets": ["frontend"], "policyRef": {"name": "frontless"}}
    bed.apply(manifests.rollback("bad-target-not-in-policy", **frontless))
    stall += [("spec.policyRef.name", "bad-unknown-policy"),
              ("spec.targets", "bad-target-not-in-policy")]  # fmt: skip
    return stall, policies


def _stalled(bed: Bed, name: str, timeout: float = 20.0) -> dict[str, Any]:
    """The Stalled condition of Rollback `name`, once it has one."""
    deadline = time.monotonic() + timeout
    while True:
        body = bed.get("rollback", name)
        conditions = body.get("status", {}).get("conditions", [])
        stalled: list[dict[str, Any]] = [c for c in conditions if c["type"] == "Stalled"]
        if stalled:
            return stalled[0]
        assert time.monotonic() < deadline, f"{name}: {body.get('status')}"
        time.sleep(0.05)


def test_every_invalid_manifest_is_refused_by_the_server_or_stalled_by_the_operator(
    bed: Bed,
) -> None:
    bed.start()
    stall, policies = _invalid_objects(bed)
    for field, name in stall:
        stalled = _stalled(bed, name)
        assert stalled["status"] == "True"
        assert stalled["reason"] == "InvalidSpec"
        assert field in stalled["message"], (name, stalled["message"])
        assert any(e["reason"] == "InvalidSpec" for e in bed.events_for(name)), name
    assert bed.world().state["requests"] == {}
    for name in policies:
        assert bed.condition(bed.get("rollbackpolicy", name), "Stalled")["reason"] == "InvalidSpec"
