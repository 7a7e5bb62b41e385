"""The operator process serves /metrics: each rollback and step once, never again after a restart.

Counters live in the process (Prometheus handles resets), so a restarted operator starts at
zero; what it must not do is count a rollback that had already finished before it started.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from sandbox import manifests
from sandbox.kube.cluster import REPO_ROOT
from tests.telemetry.conftest import MetricsBed, Samples, named, sample

pytestmark = pytest.mark.e2e
ENDED = {"Succeeded", "Failed", "PartiallyFailed"}
T = TypeVar("T")


def _until(bed: MetricsBed, check: Callable[[Samples], T | None], what: str) -> T:
    """Scrape until `check` finds what it looks for (the counter follows the status write)."""
    deadline = time.monotonic() + 20
    while (found := check(bed.scrape())) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} on /metrics\n{bed.scrape()}\n{bed.logs()[-3000:]}")
        time.sleep(0.1)
    return found


def _quick(bed: MetricsBed) -> dict[str, Any]:
    bed.cluster.apply_file(REPO_ROOT / "examples" / "policy.yaml")
    bed.cluster.apply_file(REPO_ROOT / "examples" / "quick-rollback.yaml")
    body = bed.wait_for("high-error-rates", ENDED)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    return body


SUCCEEDED = {"mode": "quick", "trigger": "manual", "result": "Succeeded"}
ROLLBACKS = "rollback_operator_rollbacks_total"


def test_a_quick_rollback_is_counted_once_with_one_duration_per_step(mbed: MetricsBed) -> None:
    mbed.start()
    body = _quick(mbed)
    samples = _until(mbed, lambda s: s if sample(s, ROLLBACKS, **SUCCEEDED) else None,
                     ROLLBACKS)  # fmt: skip
    assert named(samples, "rollback_operator_rollbacks_total") == {
        frozenset(SUCCEEDED.items()): 1.0
    }
    run = {"mode": "quick", "result": "Succeeded"}
    assert sample(samples, "rollback_operator_rollback_duration_seconds_count", **run) == 1
    steps = body["status"]["steps"]
    assert len(steps) >= 5
    counts = named(samples, "rollback_operator_step_duration_seconds_count")
    expected = {frozenset({"step": s["name"], "target": s.get("target", "")}.items()): 1.0
                for s in steps}  # fmt: skip
    assert counts == expected
    active = named(samples, "rollback_operator_active_rollbacks")
    assert frozenset({"phase": "Running"}.items()) in active
    assert set(active.values()) == {0.0}  # watched, and none left unfinished
    assert named(samples, "rollback_operator_build_info")


def test_a_restarted_operator_does_not_count_a_rollback_finished_before_it_started(
    mbed: MetricsBed,
) -> None:
    mbed.start()
    _quick(mbed)
    _until(
        mbed,
        lambda s: sample(s, "rollback_operator_rollbacks_total", **SUCCEEDED),
        "the first count",
    )
    assert mbed.process is not None
    mbed.process.kill()  # SIGKILL
    mbed.process.wait()
    mbed.start()
    mbed.apply(manifests.rollback("after-restart", dryRun=True))  # proof the new one is working
    body = mbed.wait_for("after-restart", {"Planned", "Failed"})  # Failed: nothing left to undo
    planned = {"mode": "quick", "trigger": "manual", "result": body["status"]["phase"]}
    samples = _until(mbed, lambda s: s if sample(s, ROLLBACKS, **planned) else None,
                     "the dry run's count")  # fmt: skip
    assert named(samples, "rollback_operator_rollbacks_total") == {frozenset(planned.items()): 1.0}
    before = {"rollback_namespace": mbed.namespace, "rollback": "high-error-rates",
              "phase": "Succeeded", "mode": "quick"}  # fmt: skip
    assert sample(samples, "rollback_operator_rollback_finished_timestamp_seconds", **before)
    assert named(samples, "rollback_operator_step_duration_seconds_count") == {}
    assert (
        named(samples, "rollback_operator_rollback_duration_seconds_count") == {}
    )  # a dry run runs no step


def test_an_automatic_rollback_is_labelled_automatic(mbed: MetricsBed) -> None:
    mbed.start()
    mbed.cluster.apply_file(REPO_ROOT / "examples" / "policy.yaml")
    manifest = manifests.rollback("auto-1")
    manifest["metadata"]["labels"] = {"rollback.mindmate.app/trigger": "policy"}
    mbed.apply(manifest)
    mbed.wait_for("auto-1", ENDED)
    automatic = {"mode": "quick", "trigger": "automatic", "result": "Succeeded"}
    _until(
        mbed,
        lambda s: sample(s, "rollback_operator_rollbacks_total", **automatic),
        "the automatic count",
    )


def test_restore_points_are_watched_and_counted_by_policy_and_phase(mbed: MetricsBed) -> None:
    mbed.start()
    point = {"apiVersion": "rollback.mindmate.app/v1alpha1", "kind": "RestorePoint",
             "metadata": {"name": "orphan", "namespace": mbed.namespace},
             "spec": {"policyRef": {"name": "nobody"}}}  # fmt: skip
    mbed.apply(point)  # no such policy: it stays Pending, Stalled with InvalidSpec
    pending = {"rollback_namespace": mbed.namespace, "policy": "nobody", "phase": "Pending"}
    samples = _until(
        mbed,
        lambda s: s if sample(s, "rollback_operator_restore_points", **pending) else None,
        "the restore point",
    )
    assert sample(samples, "rollback_operator_restore_points", **pending) == 1
