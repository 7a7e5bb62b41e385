"""The world of the rule tests: metric history written into real Prometheus, and a policy
evaluated round by round at simulated times against an in-memory Kubernetes host.

Time is simulated twice over: metric samples are written with timestamps in the past, and each
round asks Prometheus for the values at the round's own time (`/api/v1/query?time=`), so half an
hour of evaluations every 30 s takes about a second. The host keeps the policy's status as JSON,
the way the API server does, so `restart()` (a new source, nothing kept in memory) proves that
everything a round needs is in the status.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollback_operator.api.policy import RollbackPolicy, RollbackPolicyStatus, RollbackRef
from rollback_operator.api.rollback import TERMINAL_PHASES
from rollback_operator.providers.base import MetricsSource
from rollback_operator.providers.metrics.prometheus import PrometheusFactory
from rollback_operator.reconcile import evaluation
from rollback_operator.reconcile.automatic import EPISODES_ANNOTATION, Announcement
from sandbox import manifests
from sandbox.services.prometheus import PrometheusServer

Manifest = dict[str, Any]
Shape = Callable[[datetime], float | None]
SAMPLE_EVERY = timedelta(seconds=15)
_TERMINAL = {p.value for p in TERMINAL_PHASES}


def origin() -> datetime:
    """A minute-aligned time two hours ago: scenarios run forward from here, in the past."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(hours=2)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def ticks(start: datetime, end: datetime, every: timedelta) -> Iterator[datetime]:
    """`start`, `start + every`, ... up to `end` inclusive."""
    at = start
    while at <= end:
        yield at
        at += every


# -- metric data -------------------------------------------------------------------------------


class Series:
    """Writes the series of one test, each carrying the test's own `test` label."""

    def __init__(self, prometheus: PrometheusServer) -> None:
        self.prometheus = prometheus
        self.label = f"t-{uuid.uuid4().hex[:12]}"

    def gauge(
        self, name: str, start: datetime, end: datetime, shape: Shape,
        every: timedelta = SAMPLE_EVERY, **labels: str,
    ) -> None:  # fmt: skip
        """A gauge sampled every 15 s; `shape` returns the value, or None for a gap."""
        points = [(t, v) for t in ticks(start, end, every) if (v := shape(t)) is not None]
        self._write(name, labels, points)

    def counter(
        self, name: str, start: datetime, end: datetime, per_second: Shape, **labels: str
    ) -> None:
        """A counter sampled every 15 s whose rate follows `per_second`."""
        total, points = 0.0, []
        for at in ticks(start, end, SAMPLE_EVERY):
            total += (per_second(at) or 0.0) * SAMPLE_EVERY.total_seconds()
            points.append((at, total))
        self._write(name, labels, points)

    def _write(
        self, name: str, labels: dict[str, str], points: list[tuple[datetime, float]]
    ) -> None:
        full = {"__name__": name, "test": self.label, **labels}
        self.prometheus.write_series([(full, points)])


def isolate(query: str, label: str, names: set[str]) -> str:
    """`query` with `test="<label>"` added to every selector of a metric in `names`."""

    def add(match: re.Match[str]) -> str:
        name, brace = match.group(1), match.group(2)
        return f'{name}{{test="{label}",' if brace else f'{name}{{test="{label}"}}'

    pattern = r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")\b(\{)?"
    return re.sub(pattern, add, query)


def rule(name: str, query: str, **fields: Any) -> Manifest:
    """A rule manifest: critical above 0.05 for 5m with autoRollback, unless told otherwise."""
    return {"name": name, "query": query, "critical": {"above": 0.05}, "for": "5m",
            "autoRollback": True, **fields}  # fmt: skip


def policy(url: str, rules: list[Manifest], **spec: Any) -> Manifest:
    """A policy with frontend and backend, Prometheus at `url`, evaluated every 30 s."""
    body = manifests.policy(
        metrics={"prometheus": {"url": url}}, evaluationInterval="30s", rules=rules, **spec
    )
    body["spec"]["targets"] = {k: body["spec"]["targets"][k] for k in ("frontend", "backend")}
    body["spec"].pop("objectStore", None)
    body["metadata"]["uid"] = str(uuid.uuid4())
    return body


# -- the Kubernetes side, in memory --------------------------------------------------------------


@dataclass
class MemoryHost:
    """The PolicyHost of the tests: status as stored JSON, Events and Rollbacks in lists."""

    stored: Manifest = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)
    rollbacks: list[Manifest] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    finish_rollbacks: bool = False
    """Created Rollbacks end at once (so the next breach meets cooldown, not an active one)."""

    async def save(self, status: RollbackPolicyStatus) -> None:
        self.stored = copy.deepcopy(status.wire())

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        self.events.append((reason, message))

    async def notify(self, policy: RollbackPolicy, news: Announcement) -> None:
        self.notices.append((news.key, news.state.value))

    def active_rollback(self, targets: frozenset[str]) -> str | None:
        for body in self.rollbacks:
            if body["status"]["phase"] not in _TERMINAL and set(body["spec"]["targets"]) & targets:
                return str(body["metadata"]["name"])
        return None

    def existing_rollback(self, episodes: set[str]) -> RollbackRef | None:
        for body in self.rollbacks:
            listed = body["metadata"].get("annotations", {}).get(EPISODES_ANNOTATION, "")
            if set(listed.split(",")) & episodes:
                return RollbackRef(name=body["metadata"]["name"], time=body["created"])
        return None

    async def create_rollback(self, body: dict[str, Any]) -> RollbackRef:
        created = copy.deepcopy(body)
        created["metadata"]["name"] = f"{body['metadata']['generateName']}{len(self.rollbacks)}"
        created["status"] = {"phase": "Succeeded" if self.finish_rollbacks else "Pending"}
        created["created"] = self.now
        self.rollbacks.append(created)
        return RollbackRef(name=created["metadata"]["name"], time=self.now)

    def add_rollback(
        self, name: str, phase: str, targets: list[str], trigger: str = "manual"
    ) -> None:
        """A Rollback someone else created."""
        self.rollbacks.append({
            "metadata": {"name": name, "labels": {"rollback.mindmate.app/trigger": trigger}},
            "spec": {"targets": targets}, "status": {"phase": phase}, "created": self.now,
        })  # fmt: skip

    def reasons(self) -> list[str]:
        return [reason for reason, _ in self.events]


class Harness:
    """One policy evaluated at simulated times: Prometheus real, Kubernetes in memory."""

    def __init__(self, manifest: Manifest, host: MemoryHost | None = None) -> None:
        self.manifest = manifest
        self.host = host or MemoryHost()
        self.factory = PrometheusFactory()
        self.history: list[tuple[datetime, RollbackPolicyStatus]] = []

    def policy(self) -> RollbackPolicy:
        """The policy as the operator would read it now: spec, plus the stored status."""
        return RollbackPolicy.model_validate({**self.manifest, "status": self.host.stored})

    async def at(self, when: datetime) -> RollbackPolicyStatus:
        """Run the round of time `when`."""
        policy = self.policy()
        source: MetricsSource = await self.factory.build(policy, _NoSecrets())
        self.host.now = when
        status = await evaluation.evaluate(policy, source, self.host, when)
        self.history.append((when, status))
        return status

    async def run(self, start: datetime, end: datetime, every: timedelta | None = None) -> None:
        """Every round from `start` to `end`, at the policy's interval."""
        step = every or evaluation.step(self.policy())
        for when in ticks(start, end, step):
            await self.at(when)

    async def restart(self) -> None:
        """Forget everything but the stored status, as an operator restart does."""
        await self.factory.close()
        self.factory = PrometheusFactory()

    async def close(self) -> None:
        await self.factory.close()

    def states(self, rule: str) -> list[tuple[datetime, str]]:
        """(time, state) of `rule` at every round so far."""
        return [(t, r.state.value) for t, s in self.history for r in s.rules if r.name == rule]

    def first(self, rule: str, state: str) -> datetime | None:
        """When `rule` was first seen in `state`."""
        return next((t for t, s in self.states(rule) if s == state), None)


class _NoSecrets:
    async def read(self, namespace: str, name: str, key: str) -> str:
        raise AssertionError(f"no Secret expected, asked for {name}/{key}")
