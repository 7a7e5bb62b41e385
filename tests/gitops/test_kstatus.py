"""Flux's kstatus on every state of every kind: what `flux` and `kubectl wait` tools will see.

kstatus is computed by Flux's own library (github.com/fluxcd/cli-utils, as kustomize-controller
and helm-controller use it), built from tools/kstatus/ with the Go toolchain the API server
tests already need, so these claims are about Flux's real rules, not a copy of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitops import samples
from tests.gitops.conftest import compute

# The claims. "no-status" is an object as a cluster serves it with CRDs older than these: no
# conditions, which kstatus calls Current. Our CRDs default status.observedGeneration to 0, so
# a new object is InProgress until the operator's first write (test_new_objects).
KSTATUS: dict[str, dict[str, str]] = {
    "Rollback": {
        "no-status": "Current", "pending": "InProgress", "planning": "InProgress",
        "planned": "Current", "awaiting-approval": "InProgress", "queued": "InProgress",
        "running": "InProgress", "verifying": "InProgress", "succeeded": "Current",
        "partially-failed": "Failed", "failed": "Failed", "aborted": "Failed",
        "invalid": "Failed", "failed-traffic-stopped": "Failed",
        "aborted-traffic-resumed": "Failed", "spec-change-refused": "InProgress",
    },
    "RollbackPolicy": {
        "no-status": "Current", "generation-ahead": "InProgress", "invalid": "Failed",
        "valid": "Current", "clear": "Current", "breaching": "Current",
        "metrics-unreachable": "InProgress", "query-failed": "InProgress",
        "rollback-refused": "Failed", "suspended": "Current",
    },
    "RestorePoint": {
        "no-status": "Current", "pending": "InProgress", "running": "InProgress",
        "succeeded": "Current", "failed": "Failed", "invalid": "Failed",
    },
}  # fmt: skip


@pytest.mark.parametrize("kind", list(KSTATUS))
def test_every_state_maps_to_the_kstatus_it_claims(kstatus: Path, kind: str) -> None:
    built = samples.SAMPLES[kind]()
    assert set(built) == set(KSTATUS[kind]), "a state without a claim, or a claim without one"
    results = compute(kstatus, list(built.values()))
    found = {name: r["status"] for name, r in zip(built, results, strict=True)}
    assert found == KSTATUS[kind]


def test_a_policy_that_cannot_reach_its_metrics_is_never_current(kstatus: Path) -> None:
    (result,) = compute(kstatus, [samples.policies()["metrics-unreachable"]])
    assert result["status"] != "Current"
    assert "Cannot query http://prometheus.monitoring:9090" in result["message"]


def test_a_failed_rollback_fails_fast_with_its_message(kstatus: Path) -> None:
    (result,) = compute(kstatus, [samples.rollbacks()["failed-traffic-stopped"]])
    assert result == {"status": "Failed", "message": "restore-database failed"}
