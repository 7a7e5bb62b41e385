"""Benchmark: how fast `kubectl rollback` answers, from process start to exit, on a real API
server.

Why it exists: a CLI that CI scripts and people call many times a day must feel instant; the
target is under 0.5 s for `kubectl rollback --help` and `kubectl rollback list`. Each command
runs `--runs` times as a fresh process (the way a shell runs it); the figure is the median wall
time, with the 90th percentile. Baselines from the same run: the bare interpreter (`python -c
pass`, the floor for any Python CLI), `kubectl get rollbacks` (what users compare with), and
the imports every plugin command paid before the plugin was split by command (the Kubernetes
client library, the pydantic models and the provider registry), without any request.

The namespace holds one policy and `--rollbacks` Rollbacks (no operator runs: `list` reads what
is stored, whatever the phase).

    python -m bench.plugin_start [--runs 15] [--rollbacks 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox import manifests
from tests.apiserver.fixtures import install_crds
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import KUBECTL, KubeApiServer

BIN = Path(sys.executable).parent
TARGET = 0.5
OLD_IMPORTS = "import rollback_operator.kube, rollback_operator.plugin_candidates"


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median and 90th percentile wall time of `argv`, each run a fresh process."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return statistics.median(times), statistics.quantiles(times, n=10)[-1]


def main() -> int:
    """Run every command, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rollbacks", type=int, default=20)
    args = parser.parse_args()
    assert KUBECTL is not None
    with tempfile.TemporaryDirectory() as tmp, KubeApiServer(users=()) as server:
        install_crds(server)
        kube = KubeNamespace(server, Path(tmp) / "kube")
        server.apply(manifests.policy(namespace=kube.namespace), *[
            manifests.rollback(f"rb-{i}", namespace=kube.namespace) for i in range(args.rollbacks)
        ])  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
        env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
        plugin = str(BIN / "kubectl-rollback")
        rows = [
            ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"], False),
            ("kubectl get rollbacks (baseline)", [KUBECTL, "get", "rollbacks"], False),
            ("imports every command paid before (baseline)",
             [sys.executable, "-c", OLD_IMPORTS], False),
            ("kubectl-rollback --help", [plugin, "--help"], True),
            ("kubectl-rollback list", [plugin, "list"], True),
            ("kubectl-rollback list -o json", [plugin, "list", "-o", "json"], False),
            ("kubectl-rollback status rb-0", [plugin, "status", "rb-0"], False),
            ("kubectl rollback list (through kubectl)", [KUBECTL, "rollback", "list"], False),
        ]  # fmt: skip
        measured = [(name, *timed(argv, env, args.runs), goal) for name, argv, goal in rows]
    report(measured, args)
    return 0


def report(measured: list[tuple[str, float, float, bool]], args: argparse.Namespace) -> None:
    """The table: median, p90, ratio to `kubectl get`, and the target where one applies."""
    kubectl_get = measured[1][1]
    print(f"{args.runs} runs each, {args.rollbacks} Rollbacks in the namespace; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    print(f"{'command':<48} {'median':>8} {'p90':>8} {'x kubectl get':>14}  target")
    for name, median, p90, goal in measured:
        verdict = ("met" if median < TARGET else "MISSED") if goal else ""
        ratio = median / kubectl_get
        print(f"{name:<48} {median:>7.3f}s {p90:>7.3f}s {ratio:>13.2f}x  {verdict}")
    print(f"target: under {TARGET} s (median) for --help and list")


if __name__ == "__main__":
    sys.exit(main())
