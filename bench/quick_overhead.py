"""Benchmark: what the operator adds to a quick rollback, with zero-latency fake providers.

Measures apply -> `Succeeded` for 20 quick rollbacks against the real operator process on the
real API server (`--bed emulator`: the emulator; created over HTTP, status polled every 5 ms),
and, as the baseline in the same run, the same provider calls made directly in this process.
Prints median and p95 of both and their ratio, and on the real API server the writes each
rollback cost it (`bench.apicalls`). Targets: operator median <= 1.0 s on the emulator
(issue 2), <= 300 ms on the real API server (issue 14).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench import apicalls, beds
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers.base import Notice
from sandbox import manifests
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.memory import FakeProviderFactory, FakeWorld, default_state
from tests.e2e.bed import WATCHED, Bed

ROLLBACKS = "/apis/rollback.mindmate.app/v1alpha1/namespaces/{}/rollbacks"
TARGETS = {"apiserver": 0.3, "emulator": 1.0}


def _long_history(runs: int) -> dict[str, object]:
    state = default_state()
    for target, prefix in (("frontend", "dpl"), ("backend", "d")):
        history = [f"{prefix}-{i}" for i in range(runs + 2)]
        state[target].update(history=history, live=history[-1])
    return state


class _NoSecrets:
    async def read(self, namespace: str, name: str, key: str) -> str:
        raise AssertionError("fakes read no secrets")


async def _direct_once(world: FakeWorld) -> float:
    policy = RollbackPolicy.model_validate(manifests.policy())
    providers = await FakeProviderFactory(world).build(policy, _NoSecrets())
    assert providers.frontend
    assert providers.backend
    assert providers.verifier
    started = time.perf_counter()
    front, back = await asyncio.gather(providers.frontend.plan(None), providers.backend.plan(None))
    notifier = providers.notifiers[0]
    note = Notice("started", "default", "x", "uid", "quick", ("frontend",), "", "Running", "")
    await notifier.notify(note, f"{started}/start", MemoryJournal())
    await asyncio.gather(
        providers.frontend.rollback(front.to, "k1", MemoryJournal()),
        providers.backend.rollback(back.to, "k2", MemoryJournal()),
    )
    await providers.verifier.verify()
    await notifier.notify(note, f"{started}/finish", MemoryJournal())
    return time.perf_counter() - started


def direct(runs: int) -> list[float]:
    """The same provider calls, made directly, `runs` times."""
    world = FakeWorld(_long_history(runs))
    return [asyncio.run(_direct_once(world)) for _ in range(runs)]


def through_operator(bed: Bed, runs: int, kind: str) -> tuple[list[float], str | None]:
    """apply -> Succeeded through the operator, `runs` times, one after the other; and on the
    real API server, the writes per rollback it counted."""
    times = []
    path = ROLLBACKS.format(bed.namespace)
    with bed.cluster.client() as api:
        before = apicalls.read(api) if kind == "apiserver" else None
        for index in range(runs):
            body = manifests.rollback(f"bench-{index}", namespace=bed.namespace)
            started = time.perf_counter()
            api.post(path, json=body).raise_for_status()
            while True:
                status = api.get(f"{path}/bench-{index}").json().get("status", {})
                if status.get("phase") in ("Succeeded", "Failed", "PartiallyFailed"):
                    break
                time.sleep(0.005)
            times.append(time.perf_counter() - started)
            assert status["phase"] == "Succeeded", status
        if before is None:
            return times, None
        time.sleep(1.0)  # kopf's last patch of the last rollback
        return times, apicalls.per_rollback(before, apicalls.read(api), runs)


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 2 else values[0]


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--bed", choices=beds.KINDS, default="apiserver")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, beds.opened(args.bed, Path(tmp)) as bed:
        FakeWorld(_long_history(args.runs), bed.world_path).save()
        try:  # stopped also when it never comes up
            bed.start(wait=False)
            bed.wait_for_watch(WATCHED, timeout=beds.START_TIMEOUT)
            bed.apply(manifests.policy())
            operator, writes = through_operator(bed, args.runs, args.bed)
        finally:
            bed.stop()
    baseline = direct(args.runs)
    op_median, base_median = statistics.median(operator), statistics.median(baseline)
    target = TARGETS[args.bed]
    print(f"quick rollback apply->Succeeded, {args.runs} runs, zero-latency fakes, {args.bed}")
    print(f"  operator: median {op_median * 1000:.0f} ms, p95 {_p95(operator) * 1000:.0f} ms")
    print(f"  direct:   median {base_median * 1000:.2f} ms, p95 {_p95(baseline) * 1000:.2f} ms")
    print(f"  ratio (operator / direct, medians): {op_median / base_median:.0f}x")
    if writes:
        print(f"  {writes}")
    verdict = "met" if op_median <= target else "MISSED"
    print(f"  target median <= {target * 1000:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
