"""Flux's kstatus on every state of every kind: what `flux` and `kubectl wait` tools will see.

kstatus is computed by Flux's own library (github.com/fluxcd/cli-utils, as kustomize-controller
and helm-controller use it), built from tools/kstatus/ with the Go toolchain the API server
tests already need, so these claims are about Flux's real rules, not a copy of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.gitops import samples

TOOL = Path(__file__).parents[2] / "tools" / "kstatus"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rollback-operator"

# The claims. A Rollback or policy nobody has looked at yet has no conditions, and kstatus
# calls any object without conditions Current: the window is the operator's first status
# write (docs/gitops.md says what that means for `wait`).
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


@pytest.fixture(scope="session")
def kstatus() -> Path:
    """The kstatus binary, built once per version of tools/kstatus/ and kept in the cache."""
    inputs = b"".join((TOOL / name).read_bytes() for name in ("go.mod", "go.sum", "main.go"))
    binary = CACHE / f"kstatus-{hashlib.sha256(inputs).hexdigest()[:12]}" / "kstatus"
    if not binary.exists():
        env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"}
        env["PATH"] = f"{env.get('PATH', '')}:/usr/local/go/bin"
        partial = binary.with_suffix(f".{os.getpid()}")
        partial.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-trimpath", "-o", str(partial), "."],
                       cwd=TOOL, env=env, check=True, timeout=600)  # fmt: skip
        partial.rename(binary)
    return binary


def _compute(binary: Path, bodies: list[dict[str, Any]]) -> list[dict[str, str]]:
    answer = subprocess.run([str(binary)], input=json.dumps(bodies), capture_output=True,
                            text=True, check=True, timeout=60)  # fmt: skip
    results: list[dict[str, str]] = json.loads(answer.stdout)
    return results


@pytest.mark.parametrize("kind", list(KSTATUS))
def test_every_state_maps_to_the_kstatus_it_claims(kstatus: Path, kind: str) -> None:
    built = samples.SAMPLES[kind]()
    assert set(built) == set(KSTATUS[kind]), "a state without a claim, or a claim without one"
    results = _compute(kstatus, list(built.values()))
    found = {name: r["status"] for name, r in zip(built, results, strict=True)}
    assert found == KSTATUS[kind]


def test_a_policy_that_cannot_reach_its_metrics_is_never_current(kstatus: Path) -> None:
    (result,) = _compute(kstatus, [samples.policies()["metrics-unreachable"]])
    assert result["status"] != "Current"
    assert "Cannot query http://prometheus.monitoring:9090" in result["message"]


def test_a_failed_rollback_fails_fast_with_its_message(kstatus: Path) -> None:
    (result,) = _compute(kstatus, [samples.rollbacks()["failed-traffic-stopped"]])
    assert result == {"status": "Failed", "message": "restore-database failed"}
