"""`make demo`: a quick rollback end to end, no cluster needed, steps shown as they happen.

Starts the emulated Kubernetes API, installs the CRDs, runs the real operator (with fake
Vercel/Railway/database/storage/notifier providers whose calls take a little time), applies the
runbook's policy and a quick rollback from `examples/`, prints each step as the operator records
it, then the final status and the incident report. Exits 0 only if the rollback succeeded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.e2e.bed import Bed
from tests.kube.cluster import REPO_ROOT, EmulatedCluster

EXAMPLES = REPO_ROOT / "examples"
FINAL = {"Succeeded", "PartiallyFailed", "Failed", "Aborted", "Planned"}


def _line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _step_lines(status: dict[str, Any], seen: dict[tuple[str, str], str]) -> None:
    for step in status.get("steps", []):
        key = (step["name"], step.get("target", ""))
        if seen.get(key) == step["state"]:
            continue
        seen[key] = step["state"]
        target = f" [{step['target']}]" if step.get("target") else ""
        _line(f"  {step['state']:<9} {step['name']}{target}: {step.get('message', '')}")


def watch(bed: Bed, name: str, timeout: float) -> dict[str, Any]:
    """Print phase changes and step results until the rollback ends."""
    phase, deadline = "", time.monotonic() + timeout
    seen: dict[tuple[str, str], str] = {}
    while time.monotonic() < deadline:
        status: dict[str, Any] = bed.get("rollback", name).get("status", {})
        if status.get("phase") != phase:
            phase = status.get("phase", "")
            _line(f"phase: {phase} - {status.get('message', '')}")
        _step_lines(status, seen)
        if phase in FINAL:
            return status
        time.sleep(0.1)
    raise SystemExit(f"demo: {name} did not finish within {timeout:.0f}s")


def main() -> int:
    """Run the demo; the exit code says whether the rollback succeeded."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.4, help="seconds per provider call")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rollback-demo-") as tmp:
        workdir = Path(tmp)
        with EmulatedCluster(workdir / "cluster") as cluster:
            _line(f"Emulated Kubernetes API at {cluster.url}; CRDs installed.")
            bed = Bed(cluster, workdir)
            bed.edit_world(latency=args.latency)
            bed.start()
            try:
                _line("Operator running. Applying examples/policy.yaml and quick-rollback.yaml")
                cluster.apply_file(EXAMPLES / "policy.yaml")
                cluster.apply_file(EXAMPLES / "quick-rollback.yaml")
                status = watch(bed, "high-error-rates", timeout=120)
                plan = status.get("plan", {})
                for target, move in plan.items():
                    _line(f"plan: {target} {move.get('from')} -> {move.get('to')}")
                report = bed.get("configmap", "high-error-rates-report")["data"]["report.md"]
                _line("\n" + report)
                world = bed.world().state
                _line(
                    f"frontend live: {world['frontend']['live']}; "
                    f"backend live: {world['backend']['live']}"
                )
            finally:
                bed.stop()
    _line(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0 if status.get("phase") == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
