"""Benchmark: 1,000 RollbackPolicies x 4 rules evaluated every 30 s against a real Prometheus.

The real operator process runs on the real API server (`--bed emulator`: the emulator); a real
Prometheus is fed by remote write (20 minutes of history, then one sample per series every 15 s
while it runs).
Each policy guards its own app with four rules (error ratio, latency, cache hit ratio,
connections); one app in twenty is breaching its error rule, so those policies also fetch
history and post Events. Two measurements:

1. CPU and memory: the operator's CPU seconds over whole evaluation rounds (utime + stime from
   /proc), divided by the rounds, and its RSS; against the target "a 30 s interval costs at
   most 25% of one core". Baseline in the same run: the same operator idle, before the
   policies exist (CPU share and RSS).
2. Latency: probe policies (`for: 1m`, every 30 s) whose metric (one sample a second) goes bad
   at a random moment while the load runs; latency = the Rollback's creation
   (status.lastAutomaticRollback.time) - (first bad sample + `for`); target: never negative
   (no rollback before `for` has passed), at most one evaluation interval.

    python -m bench.policy_eval [--policies 1000] [--rounds 3] [--probes 4] [--bed emulator]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import beds
from sandbox import manifests
from sandbox.services.prometheus import Labels, PrometheusServer
from tests.e2e.bed import Bed

POLICY_PATH = "/apis/rollback.mindmate.app/v1alpha1/namespaces/{}/rollbackpolicies"
POLICIES = "rollback.mindmate.app/v1alpha1/rollbackpolicies"
TICK = timedelta(seconds=15)
INTERVAL = 30.0
HOLD = timedelta(minutes=1)
Series = list[tuple[Labels, list[tuple[datetime, float]]]]


def _rules(app: str) -> list[dict[str, Any]]:
    sel = f'app="{app}"'
    return [
        {"name": "errors", "for": "5m", "critical": {"above": 0.05}, "warning": {"above": 0.01},
         "query": f'sum(rate(requests_total{{{sel},code="500"}}[1m]))'
                  f" / sum(rate(requests_total{{{sel}}}[1m]))"},
        {"name": "latency", "for": "5m", "critical": {"above": 1.0},
         "query": f"max(latency_seconds{{{sel}}})"},
        {"name": "cache", "for": "15m", "critical": {"below": 0.8},
         "query": f"sum(rate(cache_hits_total{{{sel}}}[5m]))"
                  f" / sum(rate(cache_total{{{sel}}}[5m]))"},
        {"name": "connections", "for": "5m", "critical": {"above": 0.9}, "autoRollback": True,
         "query": f"max(connections_ratio{{{sel}}})"},
    ]  # fmt: skip


def _policy(name: str, url: str, rules: list[dict[str, Any]], every: str) -> dict[str, Any]:
    body = manifests.policy(name, metrics={"prometheus": {"url": url}}, rules=rules)
    body["spec"]["evaluationInterval"] = every
    return body


@dataclass
class Feed:
    """Writes every series: 20 minutes of history first, then one sample per tick."""

    prometheus: PrometheusServer
    apps: int
    probes: dict[str, datetime] = field(default_factory=dict)
    """Probe name -> when its metric goes bad."""
    breached: dict[str, datetime] = field(default_factory=dict)
    """Probe name -> the time of its first bad sample."""
    _totals: dict[tuple[str, str], float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def backfill(self, now: datetime) -> None:
        at = now - timedelta(minutes=20)
        while at <= now:
            self.write(at)
            at += TICK

    def write(self, at: datetime) -> None:
        """One sample of every app series at `at`."""
        series: Series = []
        for i in range(self.apps):
            series.extend(self._app(f"app-{i}", at, breaching=i % 20 == 0))
        for start in range(0, len(series), 2000):
            self.prometheus.write_series(series[start : start + 2000])

    def write_probes(self, at: datetime) -> None:
        """One sample of every probe series: 0.5 until it goes bad, then 0.95; the first bad
        sample's time is when its breach began."""
        for probe, bad in self.probes.items():
            if at >= bad:
                self.breached.setdefault(probe, at)
        self.prometheus.write_series([
            ({"__name__": "connections_ratio", "app": probe}, [(at, 0.95 if at >= bad else 0.5)])
            for probe, bad in self.probes.items()
        ])  # fmt: skip

    def _app(self, app: str, at: datetime, *, breaching: bool) -> Series:
        step = TICK.total_seconds()
        counters = {("requests_total", "200"): 10.0, ("requests_total", "500"): 1.0 * breaching,
                    ("cache_hits_total", ""): 95.0, ("cache_total", ""): 100.0}  # fmt: skip
        out: Series = []
        for (name, code), rate in counters.items():
            total = self._totals.get((app, name + code), 0.0) + rate * step
            self._totals[(app, name + code)] = total
            labels = {"__name__": name, "app": app} | ({"code": code} if code else {})
            out.append((labels, [(at, total)]))
        out.append(({"__name__": "latency_seconds", "app": app}, [(at, 0.2)]))
        out.append(({"__name__": "connections_ratio", "app": app}, [(at, 0.5)]))
        return out

    def run(self) -> None:
        """Probes every second, apps every tick, until stopped."""
        next_tick = time.monotonic() + TICK.total_seconds()
        while not self._stop.wait(1.0):
            now = datetime.now(UTC)
            if self.probes:
                self.write_probes(now)
            if time.monotonic() >= next_tick:
                self.write(now)
                next_tick += TICK.total_seconds()

    def stop(self) -> None:
        self._stop.set()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _create(api: httpx.Client, ns: str, bodies: list[dict[str, Any]]) -> None:
    """POST every policy into namespace `ns`."""
    for body in bodies:
        body = {**body, "metadata": {**body["metadata"], "namespace": ns}}
        api.post(POLICY_PATH.format(ns), json=body).raise_for_status()


def _evaluated(api: httpx.Client, ns: str) -> int:
    items = api.get(POLICY_PATH.format(ns)).json()["items"]
    return sum(1 for i in items if i.get("status", {}).get("rules"))


def _measure(pid: int, seconds: float) -> tuple[float, float]:
    """CPU seconds used by `pid` over `seconds` of wall time, and that wall time."""
    cpu, wall = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return cpu_seconds(pid) - cpu, time.monotonic() - wall


def _probe_latencies(api: httpx.Client, ns: str, feed: Feed, timeout: float) -> list[float]:
    deadline, found = time.monotonic() + timeout, dict[str, float]()
    while len(found) < len(feed.probes) and time.monotonic() < deadline:
        for name, began in dict(feed.breached).items():
            last = (
                api.get(f"{POLICY_PATH.format(ns)}/{name}")
                .json()
                .get("status", {})
                .get("lastAutomaticRollback")
            )
            if name not in found and last:
                acted = datetime.fromisoformat(last["time"].replace("Z", "+00:00"))
                found[name] = (acted - (began + HOLD)).total_seconds()
        time.sleep(0.5)
    return list(found.values())


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probes", type=int, default=4)
    parser.add_argument("--bed", choices=beds.KINDS, default="apiserver")
    args = parser.parse_args()
    prometheus = PrometheusServer().start()
    feed = Feed(prometheus, args.policies)
    try:
        with tempfile.TemporaryDirectory() as tmp, beds.opened(args.bed, Path(tmp)) as bed:
            report(args, prometheus, feed, bed)
    finally:
        feed.stop()
        prometheus.stop()


@dataclass
class Figures:
    """What one run measured."""

    idle_cpu: float = 0.0
    idle_wall: float = 1.0
    idle_rss: float = 0.0
    cpu: float = 0.0
    wall: float = 1.0
    rss: float = 0.0
    latencies: list[float] = field(default_factory=list)


def report(args: argparse.Namespace, prometheus: PrometheusServer, feed: Feed, bed: Bed) -> None:
    """Set up, measure, print."""
    started = time.monotonic()
    feed.backfill(datetime.now(UTC))
    print(f"history for {args.policies} apps written in {time.monotonic() - started:.1f}s")
    bed.start()
    bed.wait_for_watch(POLICIES)
    pid = bed.process.pid if bed.process else 0
    threading.Thread(target=feed.run, daemon=True).start()
    try:
        with bed.cluster.client(timeout=60) as api:
            figures = _run(args, api, bed.namespace, prometheus, feed, pid)
    finally:
        bed.stop()
    _print(args, figures)


def _run(
    args: argparse.Namespace, api: httpx.Client, ns: str, prometheus: PrometheusServer,
    feed: Feed, pid: int,
) -> Figures:  # fmt: skip
    figures = Figures()
    figures.idle_cpu, figures.idle_wall = _measure(pid, 10.0)
    figures.idle_rss = rss_mib(pid)
    names = [f"app-{i}" for i in range(args.policies)]
    started = time.monotonic()
    _create(api, ns, [_policy(n, prometheus.url, _rules(n), f"{INTERVAL:.0f}s") for n in names])
    print(f"{args.policies} policies created in {time.monotonic() - started:.1f}s")
    while _evaluated(api, ns) < args.policies:
        time.sleep(1)
    print(f"every policy evaluated once, {time.monotonic() - started:.1f}s after the first")
    now = datetime.now(UTC)
    feed.probes = {f"probe-{k}": now + timedelta(seconds=random.uniform(5, 35))
                   for k in range(args.probes)}  # fmt: skip
    _create(api, ns, [_policy(n, prometheus.url, [_rules(n)[3] | {"for": "1m"}], "30s")
                  for n in feed.probes])  # fmt: skip
    figures.cpu, figures.wall = _measure(pid, args.rounds * INTERVAL)
    figures.rss = rss_mib(pid)
    figures.latencies = _probe_latencies(api, ns, feed, timeout=120)
    return figures


def _print(args: argparse.Namespace, f: Figures) -> None:
    rounds = f.wall / INTERVAL
    per_round = f.cpu / rounds
    share, idle = per_round / INTERVAL, f.idle_cpu / f.idle_wall
    verdict = "met" if share <= 0.25 else "MISSED"
    print(f"\n{args.policies} policies x 4 rules every {INTERVAL:.0f}s, {rounds:.1f} rounds")
    print(f"  operator CPU: {f.cpu:.1f}s in {f.wall:.0f}s = {per_round:.2f} CPU-s per round")
    print(f"  per rule and round: {per_round / (args.policies * 4) * 1e6:.0f} us")
    print(f"  share of one core: {share:.1%}, idle operator {idle:.1%}")
    print(f"  target <= 25%: {verdict}, ratio to target {share / 0.25:.2f}")
    grown = (f.rss - f.idle_rss) * 1024 / args.policies
    print(f"  RSS: {f.rss:.0f} MiB, idle {f.idle_rss:.0f} MiB, {grown:.0f} KiB per policy")
    _print_latency(f.latencies)


def _print_latency(latencies: list[float]) -> None:
    if not latencies:
        print("  breach -> Rollback: no probe rolled back (MISSED)")
        return
    low, high = min(latencies), max(latencies)
    verdict = "met" if low >= 0 and high <= INTERVAL else "MISSED"
    print(f"  breach -> Rollback, after `for` has passed, {len(latencies)} probes:")
    print(f"    min {low:.1f}s, median {statistics.median(latencies):.1f}s, max {high:.1f}s")
    print(f"    max / interval {high / INTERVAL:.2f}; target 0 <= latency <= 1 interval: {verdict}")


if __name__ == "__main__":
    main()
