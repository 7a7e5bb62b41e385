"""`kubectl rollback restore-point POLICY` takes one now, and `candidates` lists the points, run
by kubectl against the real API server (the operator with its in-memory provider fakes)."""

from __future__ import annotations

import json

import pytest

from sandbox import manifests
from sandbox.fakes.saas import serving
from tests.e2e.bed import Bed
from tests.e2e.test_plugin_e2e import kubectl_rollback
from tests.restorepoints.test_restorepoint_e2e import POINTS

pytestmark = pytest.mark.e2e


def test_restore_point_takes_one_now_and_waits_for_it(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())
    flags = ("--name", "before-42", "--reason", "release 42", "--wait", "--timeout", "60s")
    run = kubectl_rollback(bed.cluster.kubeconfig, "restore-point", "mindmate", *flags)
    assert run.returncode == 0, run.stderr + run.stdout + bed.logs()[-2000:]
    assert "restorepoint.rollback.mindmate.app/before-42 created" in run.stdout
    assert run.stdout.strip().splitlines()[-1].startswith("Succeeded")
    body = bed.get(POINTS, "before-42")
    assert body["spec"] == {"policyRef": {"name": "mindmate"}, "reason": "release 42"}
    assert body["status"]["database"]["backup"] == "restore-points/before-42.dump"
    assert bed.world().state["database"]["points"]["restore-points/before-42.dump"]


def test_restore_point_of_a_missing_policy_waits_and_says_why(bed: Bed) -> None:
    bed.start()
    run = kubectl_rollback(bed.cluster.kubeconfig, "restore-point", "nope", "--name", "p",
                           "--wait", "--timeout", "3s")  # fmt: skip
    assert run.returncode == 6, run.stderr + run.stdout
    assert "spec.policyRef.name: RollbackPolicy 'nope' not found" in run.stdout


def test_a_restore_point_named_twice_is_refused(bed: Bed) -> None:
    bed.apply(manifests.policy())
    first = kubectl_rollback(bed.cluster.kubeconfig, "restore-point", "mindmate", "--name", "p")
    assert first.returncode == 0, first.stderr
    again = kubectl_rollback(bed.cluster.kubeconfig, "restore-point", "mindmate", "--name", "p")
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_the_api_server_refuses_a_bad_restore_point_naming_the_field(bed: Bed) -> None:
    bed.apply(manifests.policy())
    run = kubectl_rollback(bed.cluster.kubeconfig, "restore-point", "mindmate", "--name", "p",
                           "--targets", "database,frontend")  # fmt: skip
    assert run.returncode == 1
    assert "spec.targets[1]" in run.stderr
    changed = {"spec": {"reason": "edited"}}
    assert kubectl_rollback(bed.cluster.kubeconfig, "restore-point", "mindmate", "--name",
                            "q").returncode == 0  # fmt: skip
    edit = bed.cluster.kubectl("patch", POINTS, "q", "--type=merge", "-p", json.dumps(changed),
                               check=False)  # fmt: skip
    assert edit.returncode != 0
    assert "spec: Invalid value" in edit.stderr
    assert "immutable" in edit.stderr


def test_candidates_lists_the_policys_restore_points_newest_first(bed: Bed) -> None:
    with serving(history=3) as saas:
        policy = saas.policy()
        policy["spec"]["targets"] |= {"database": None, "storage": None}
        policy["spec"]["objectStore"] = None
        for secret in saas.secrets():
            bed.apply(secret)
        bed.apply(policy)
        for name in ("older", "newer"):
            kubectl_rollback(bed.cluster.kubeconfig, "restore-point", "mindmate", "--name", name)
        done = {"status": {"phase": "Succeeded", "finishedAt": "2026-01-01T00:00:00Z",
                           "database": {"backup": "restore-points/newer.dump"}}}  # fmt: skip
        bed.cluster.kubectl("patch", POINTS, "newer", "--subresource=status", "--type=merge",
                            "-p", json.dumps(done))  # fmt: skip
        run = kubectl_rollback(bed.cluster.kubeconfig, "candidates", "mindmate", "-o", "json",
                               "--allow-endpoint", "http://127.0.0.1")  # fmt: skip
    assert run.returncode == 0, run.stderr + run.stdout
    rows = json.loads(run.stdout)["targets"]["restorePoints"]["candidates"]
    assert [(r["id"], r["state"]) for r in rows] == [("newer", "Succeeded"), ("older", "Pending")]
    assert rows[0]["note"] == "database restore-points/newer.dump"
