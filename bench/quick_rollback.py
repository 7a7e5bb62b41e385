"""Benchmark: a quick rollback runs its two targets in parallel.

Real Vercel and Railway adapters, through the operator process on the real API server
(`--bed emulator`: the emulator), against the fake servers with 50 ms per call and 1 s rollback
jobs. Measures apply -> `Succeeded` for a quick rollback of both targets, and of each target
alone, in the same run; the ratio is both / max(frontend alone, backend alone). Target
(issue 3): ratio <= 1.1.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench import beds
from sandbox import manifests
from sandbox.fakes.saas import Saas, serving
from tests.e2e.bed import Bed

VARIANTS = {"both": ["frontend", "backend"], "frontend": ["frontend"], "backend": ["backend"]}


def one(bed: Bed, name: str, targets: list[str]) -> float:
    """Seconds from apply to Succeeded for one quick rollback."""
    started = time.perf_counter()
    bed.apply(manifests.rollback(name, targets=targets))
    body = bed.wait_for(name, {"Succeeded", "Failed", "PartiallyFailed"}, timeout=120)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    return time.perf_counter() - started


def measure(bed: Bed, saas: Saas, runs: int) -> dict[str, list[float]]:
    """Interleave the three variants `runs` times."""
    for secret in saas.secrets():
        bed.apply(secret)
    bed.apply(saas.policy())
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for index in range(runs):
        for variant, targets in VARIANTS.items():
            times[variant].append(one(bed, f"{variant}-{index}", targets))
    return times


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bed", choices=beds.KINDS, default="apiserver")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        beds.opened(args.bed, Path(tmp)) as bed,
        serving(
            latency=0.05, job_seconds=1.0, deploy_seconds=1.0, history=4 * args.runs + 2
        ) as saas,
    ):
        bed.start(real=("frontend", "backend"))
        try:
            times = measure(bed, saas, args.runs)
        finally:
            bed.stop()
    medians = {variant: statistics.median(values) for variant, values in times.items()}
    slower = max(medians["frontend"], medians["backend"])
    print(f"quick rollback, real adapters, fakes at 50 ms/call and 1 s jobs, {args.runs} runs each")
    for variant, value in medians.items():
        runs = ", ".join(f"{t:.2f}" for t in times[variant])
        print(f"  {variant:<9} median {value:.2f} s  (runs: {runs})")
    print(f"  ratio both / slower alone: {medians['both'] / slower:.3f} (target <= 1.1)")


if __name__ == "__main__":
    main()
