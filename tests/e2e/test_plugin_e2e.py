"""`kubectl rollback ...` (the kubectl-rollback plugin) driving whole rollbacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import manifests
from tests.apiserver.fixtures import install_crds
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import KUBECTL, KubeApiServer
from tests.e2e.bed import Bed

pytestmark = pytest.mark.e2e


def kubectl_rollback(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `kubectl rollback ARGS` the way a user would: kubectl finds the plugin on PATH."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "rollback", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_plugin_plans_starts_approves_reports_and_aborts(bed: Bed) -> None:
    frontend = {"history": ["dpl_older", "dpl_old", "dpl_new"], "live": "dpl_new", "serving": True}
    backend = {"history": ["d-older", "d-old", "d-new"], "live": "d-new", "serving": True}
    bed.edit_world(frontend=frontend, backend=backend)
    bed.start()
    bed.apply(manifests.policy())
    config = bed.cluster.kubeconfig

    planned = kubectl_rollback(config, "plan", "mindmate", "--mode", "full", "--name", "p0")
    assert planned.returncode == 0, planned.stderr
    assert "restore backup_20240101.dump" in planned.stdout
    assert "dpl_new -> dpl_old" in planned.stdout

    started = kubectl_rollback(
        config, "start", "mindmate", "--require-approval", "--name", "p1", "--reason", "errors"
    )
    assert started.returncode == 0, started.stderr
    bed.wait_for("p1", {"AwaitingApproval"})
    assert "AwaitingApproval" in kubectl_rollback(config, "list").stdout
    # the admin started it, so another person approves: bob, whom the admin impersonates
    bed.cluster.kubectl("create", "role", "approver", "--verb=get,patch",
                        "--resource=rollbacks.rollback.mindmate.app")  # fmt: skip
    bed.cluster.kubectl("create", "rolebinding", "approver", "--role=approver", "--user=bob")
    approved = kubectl_rollback(config, "approve", "p1", "--as", "bob")
    assert approved.returncode == 0, approved.stderr
    bed.wait_for("p1", {"Succeeded"})
    assert bed.get("rollback", "p1")["status"]["approvedBy"] == "bob"
    shown = kubectl_rollback(config, "status", "p1").stdout
    assert f"Rollback {bed.namespace}/p1: Succeeded" in shown
    assert "instant-rollback" in shown
    assert "Approved" in shown
    report = kubectl_rollback(config, "report", "p1")
    assert f"# Rollback report: {bed.namespace}/p1" in report.stdout

    kubectl_rollback(config, "start", "mindmate", "--require-approval", "--name", "p2")
    bed.wait_for("p2", {"AwaitingApproval"})
    assert kubectl_rollback(config, "abort", "p2").returncode == 0
    assert bed.wait_for("p2", {"Aborted"})["status"]["phase"] == "Aborted"


def test_plugin_start_wait_shows_the_steps_live_and_returns_the_outcome(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())
    run = kubectl_rollback(
        bed.cluster.kubeconfig, "start", "mindmate", "--wait", "--to", "frontend=dpl_old"
    )
    assert run.returncode == 0, run.stderr + run.stdout
    assert "Succeeded instant-rollback [frontend]" in " ".join(run.stdout.split())
    assert "phase Succeeded" in run.stdout


def test_plugin_explains_a_missing_policy_and_missing_crds(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    kube = KubeNamespace(fresh_apiserver, tmp_path / "kube")
    no_crds = kubectl_rollback(kube.kubeconfig, "list")
    assert no_crds.returncode == 1
    assert "CRDs are not installed" in no_crds.stderr
    install_crds(fresh_apiserver)
    missing = kubectl_rollback(kube.kubeconfig, "start", "nope")
    assert missing.returncode == 1
    assert f"RollbackPolicy 'nope' not found in namespace '{kube.namespace}'" in missing.stderr
    bad_pin = kubectl_rollback(kube.kubeconfig, "start", "nope", "--to", "cdn=x")
    assert "use TARGET=VALUE" in bad_pin.stderr
