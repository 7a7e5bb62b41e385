"""`kubectl rollback` in scripts and CI: machine-readable output, and `status --watch`, whose
exit code says how a rollback ended, against the real operator on a real API server."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sandbox import manifests
from sandbox.services.prometheus import PrometheusServer
from tests.e2e.bed import Bed
from tests.e2e.test_plugin_e2e import kubectl_rollback

pytestmark = pytest.mark.e2e


def watch(bed: Bed, name: str, *flags: str) -> tuple[int, str]:
    """`kubectl rollback status NAME --watch FLAGS`: (exit code, stdout)."""
    run = kubectl_rollback(bed.cluster.kubeconfig, "status", name, "--watch", *flags)
    return run.returncode, run.stdout + run.stderr


def test_watch_exits_0_when_the_rollback_succeeds_and_prints_it_as_json(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("ok"))

    code, out = watch(bed, "ok", "-o", "json")

    assert code == 0, out
    shown = json.loads(out)
    assert (shown["metadata"]["name"], shown["status"]["phase"]) == ("ok", "Succeeded")


def test_watch_exits_3_when_the_rollback_fails(bed: Bed) -> None:
    bed.world().inject("frontend.plan", {"kind": "permanent"})
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("broken"))

    code, out = watch(bed, "broken")

    assert code == 3, out
    assert f"Rollback {bed.namespace}/broken: Failed" in out


def test_watch_exits_4_when_the_rollback_partially_fails(bed: Bed) -> None:
    bed.world().inject("database.restore", {"kind": "permanent"})
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("half", mode="full"))

    code, out = watch(bed, "half")

    assert code == 4, out
    assert "PartiallyFailed" in out


def test_watch_exits_5_when_the_rollback_is_aborted(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("gated", requireApproval=True))
    bed.wait_for("gated", {"AwaitingApproval"})
    assert kubectl_rollback(bed.cluster.kubeconfig, "abort", "gated").returncode == 0

    code, out = watch(bed, "gated")

    assert code == 5, out


def test_watch_exits_6_when_the_timeout_passes_first_and_does_not_stop_at_planned(
    bed: Bed,
) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("waiting", requireApproval=True))

    code, out = watch(bed, "waiting", "--timeout", "4s")

    assert code == 6, out
    assert "still AwaitingApproval when --timeout passed" in out
    assert "phase Planned" in out or "phase AwaitingApproval" in out


def test_watch_attaches_to_an_automatic_rollback_found_with_list_json(
    bed: Bed, prometheus: PrometheusServer
) -> None:
    rule = {"name": "always-critical", "query": "vector(1)", "critical": {"above": 0.5},
            "for": "0s", "autoRollback": True}  # fmt: skip
    bed.start()
    bed.apply(manifests.policy(
        metrics={"prometheus": {"url": prometheus.url}}, evaluationInterval="1s", rules=[rule],
        automaticRollback={"mode": "quick", "targets": ["frontend", "backend"]},
    ))  # fmt: skip

    automatic = _first_automatic(bed)
    code, out = watch(bed, automatic, "-o", "yaml")

    assert code == 0, out
    assert "phase: Succeeded" in out


def _first_automatic(bed: Bed, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = _json(kubectl_rollback(bed.cluster.kubeconfig, "list", "-o", "json").stdout)
        found = [item["metadata"]["name"] for item in listed["items"]
                 if item["metadata"].get("labels", {}).get("rollback.mindmate.app/trigger")
                 == "policy"]  # fmt: skip
        if found:
            return str(found[0])
        time.sleep(0.5)
    raise AssertionError(f"no automatic rollback within {timeout}s:\n{bed.logs()[-3000:]}")


def _json(text: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(text)
    return found


def test_plan_prints_json_and_leaves_no_dry_run_rollback_behind(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())

    run = kubectl_rollback(bed.cluster.kubeconfig, "plan", "mindmate", "-o", "json")

    assert run.returncode == 0, run.stderr
    planned = _json(run.stdout)
    assert planned["spec"]["dryRun"] is True
    assert planned["status"]["phase"] == "Planned"
    assert planned["status"]["plan"]["frontend"]["to"] == "dpl_old"
    _wait_no_rollbacks(bed)


def test_plan_keep_leaves_the_dry_run_rollback_for_later(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())

    run = kubectl_rollback(bed.cluster.kubeconfig, "plan", "mindmate", "--keep", "--name", "p")

    assert run.returncode == 0, run.stderr
    assert "(kept: rollback/p)" in run.stdout
    assert bed.get("rollback", "p")["status"]["phase"] == "Planned"


def _wait_no_rollbacks(bed: Bed, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _json(kubectl_rollback(bed.cluster.kubeconfig, "list", "-o", "json").stdout)["items"]:
        assert time.monotonic() < deadline, "the dry-run Rollback is still there"
        time.sleep(0.2)


def test_list_and_status_json_are_the_objects_the_api_holds(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("one"))
    bed.wait_for("one", {"Succeeded"})

    listed = _json(kubectl_rollback(bed.cluster.kubeconfig, "list", "-A", "-o", "json").stdout)
    status = _json(kubectl_rollback(bed.cluster.kubeconfig, "status", "one", "-o", "json").stdout)
    held = bed.get("rollback", "one")

    mine = [i for i in listed["items"] if i["metadata"]["namespace"] == bed.namespace]
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in mine] == ["one"]
    assert status["status"] == held["status"]
    assert status["metadata"]["uid"] == held["metadata"]["uid"]
