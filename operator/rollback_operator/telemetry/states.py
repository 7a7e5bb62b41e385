"""Gauges of what each Rollback, RollbackPolicy and RestorePoint is now, read from the objects.

Why this module exists: counters say what happened in this process; alerts also need what *is*
(a rollback running for hours, traffic a failed rollback left stopped, a policy that cannot
reach its metrics, the newest restore point of a policy). Those are the objects' own status,
so the handlers hand every watched object to `States.see` (and `forget` when it is deleted),
and the gauges are computed from that picture at each scrape. A restarted operator lists every
object on its first watch, so the picture is complete again without anything stored here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ValidationError

from rollback_operator.api.common import Model
from rollback_operator.api.conditions import ConditionType, Reason, find
from rollback_operator.api.policy import RollbackPolicyStatus
from rollback_operator.api.rollback import STARTED_PHASES, TERMINAL_PHASES, Phase, RollbackStatus
from rollback_operator.api.rules import RuleState

PREFIX = "rollback_operator_"
ACTIVE_PHASES = tuple(p.value for p in Phase if p not in TERMINAL_PHASES)
RULE_STATES = tuple(s.value for s in RuleState)
POINT_ENDS = (("Succeeded", "success"), ("Failed", "failure"))
"""RestorePoint phases that end one (DESIGN: Pending Running Succeeded Failed)."""
StatusModel = TypeVar("StatusModel", bound=Model)


@dataclass(frozen=True)
class RollbackNow:
    """One Rollback: its phase, since when, and whether traffic it stopped is still stopped."""

    namespace: str
    name: str
    phase: str
    since: float
    mode: str
    traffic_stopped: bool
    finished: float | None


@dataclass(frozen=True)
class PolicyNow:
    """One RollbackPolicy: can it reach its metrics, is it suspended, each rule's state."""

    namespace: str
    name: str
    metrics_reachable: bool
    suspended: bool
    rules: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PointNow:
    """One RestorePoint: its policy, phase and when it ended (None while it runs)."""

    namespace: str
    policy: str
    phase: str
    finished: float | None


def _stamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(body: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = body.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _status(body: Mapping[str, Any], model: type[StatusModel]) -> StatusModel | None:
    """The body's status read as `model`; None when it cannot be read."""
    try:
        return model.model_validate(body.get("status") or {})
    except ValidationError:
        return None


def rollback_now(body: Mapping[str, Any]) -> RollbackNow | None:
    """The picture of one Rollback body; None when its status cannot be read."""
    meta, status = _meta(body), _status(body, RollbackStatus)
    if status is None:
        return None
    started = status.phase in STARTED_PHASES and status.started_at is not None
    since = status.started_at if started else meta.get("creationTimestamp")
    traffic = find(status.conditions, ConditionType.TRAFFIC_STOPPED)
    ready = find(status.conditions, ConditionType.READY)
    ended = status.finished_at or (ready.last_transition_time if ready else None)
    return RollbackNow(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        phase=status.phase.value,
        since=_stamp(since),
        mode=str(status.mode or _spec(body).get("mode") or "quick"),
        traffic_stopped=traffic is not None and traffic.status == "True",
        finished=_stamp(ended) if status.phase in TERMINAL_PHASES and ended else None,
    )


def policy_now(body: Mapping[str, Any]) -> PolicyNow | None:
    """The picture of one RollbackPolicy body; None when its status cannot be read."""
    meta, status = _meta(body), _status(body, RollbackPolicyStatus)
    if status is None:
        return None
    ready = find(status.conditions, ConditionType.READY)
    unreachable = ready is not None and ready.reason == Reason.METRICS_UNREACHABLE.value
    return PolicyNow(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        metrics_reachable=not unreachable,
        suspended=bool(_spec(body).get("suspend")),
        rules=tuple((r.name, r.state.value) for r in status.rules),
    )


def point_now(body: Mapping[str, Any]) -> PointNow | None:
    """The picture of one RestorePoint body; None when it names no policy."""
    meta = _meta(body)
    ref = _spec(body).get("policyRef")
    policy = ref.get("name") if isinstance(ref, Mapping) else None
    status = body.get("status")
    status = status if isinstance(status, Mapping) else {}
    if not policy:
        return None
    phase = str(status.get("phase") or "Pending")
    ended = phase in dict(POINT_ENDS)
    finished = (status.get("finishedAt") or meta.get("creationTimestamp")) if ended else None
    return PointNow(
        namespace=str(meta.get("namespace") or ""),
        policy=str(policy),
        phase=phase,
        finished=None if finished is None else _stamp(finished),
    )


class States(Collector):
    """The latest picture of every watched object, as gauges at each scrape."""

    def __init__(self) -> None:
        self.rollbacks: dict[str, RollbackNow] = {}
        self.policies: dict[str, PolicyNow] = {}
        self.points: dict[str, PointNow] = {}

    def see(self, kind: str, uid: str, body: Mapping[str, Any]) -> None:
        """Take `body` (a Rollback, RollbackPolicy or RestorePoint) as its object's state."""
        table: dict[str, Any] = self._table(kind)
        reader = {"Rollback": rollback_now, "RollbackPolicy": policy_now}.get(kind, point_now)
        now = reader(body)
        if now is None:
            table.pop(uid, None)
        else:
            table[uid] = now

    def forget(self, kind: str, uid: str) -> None:
        """The object is gone."""
        self._table(kind).pop(uid, None)

    def _table(self, kind: str) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {
            "Rollback": self.rollbacks,
            "RollbackPolicy": self.policies,
            "RestorePoint": self.points,
        }
        return tables[kind]

    def collect(self) -> Iterator[Metric]:
        rollbacks = list(self.rollbacks.values())
        yield from _rollback_families(rollbacks)
        yield from _policy_families(list(self.policies.values()))
        yield from _point_families(list(self.points.values()))

    def describe(self) -> Iterator[Metric]:
        return iter(())


def _family(name: str, text: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, text, labels=labels)


def _rollback_families(rollbacks: list[RollbackNow]) -> Iterator[Metric]:
    active = [r for r in rollbacks if r.phase in ACTIVE_PHASES]
    counts = Counter(r.phase for r in active)
    by_phase = _family("active_rollbacks", "Rollbacks not finished yet, by phase.", ["phase"])
    for phase in ACTIVE_PHASES:
        by_phase.add_metric([phase], counts.get(phase, 0))
    yield by_phase
    since = _family(
        "rollback_phase_since_timestamp_seconds",
        "Each unfinished Rollback: when it started running (Running, Verifying) or was "
        "created (earlier phases), as Unix seconds.",
        ["rollback_namespace", "rollback", "phase", "mode"],
    )
    for r in active:
        since.add_metric([r.namespace, r.name, r.phase, r.mode], r.since)
    yield since
    finished = _family(
        "rollback_finished_timestamp_seconds",
        "Each finished Rollback still kept: when it ended (finishedAt), as Unix seconds.",
        ["rollback_namespace", "rollback", "phase", "mode"],
    )
    for r in rollbacks:
        if r.finished is not None:
            finished.add_metric([r.namespace, r.name, r.phase, r.mode], r.finished)
    yield finished
    stopped = _family(
        "traffic_stopped",
        "1 for each Rollback whose condition TrafficStopped is True: production traffic it "
        "stopped is still stopped.",
        ["rollback_namespace", "rollback", "phase"],
    )
    for r in rollbacks:
        if r.traffic_stopped:
            stopped.add_metric([r.namespace, r.name, r.phase], 1)
    yield stopped


def _policy_families(policies: list[PolicyNow]) -> Iterator[Metric]:
    labels = ["rollback_namespace", "policy"]
    reachable = _family(
        "policy_metrics_reachable",
        "0 while a policy's Prometheus cannot be reached (Ready False, MetricsUnreachable).",
        labels,
    )
    suspended = _family("policy_suspended", "1 while spec.suspend is true.", labels)
    states = _family(
        "policy_rule_state",
        "1 for each rule's current state (Ok, Pending, Warning, Critical, NoData, Error).",
        [*labels, "rule", "state"],
    )
    for p in policies:
        reachable.add_metric([p.namespace, p.name], 1 if p.metrics_reachable else 0)
        suspended.add_metric([p.namespace, p.name], 1 if p.suspended else 0)
        for rule, state in p.rules:
            for each in RULE_STATES:
                states.add_metric([p.namespace, p.name, rule, each], 1 if each == state else 0)
    yield from (reachable, suspended, states)


def _point_families(points: list[PointNow]) -> Iterator[Metric]:
    labels = ["rollback_namespace", "policy"]
    counts = _family("restore_points", "RestorePoints by policy and phase.", [*labels, "phase"])
    for (namespace, policy, phase), n in sorted(
        Counter((p.namespace, p.policy, p.phase) for p in points).items()
    ):
        counts.add_metric([namespace, policy, phase], n)
    yield counts
    for phase, name in POINT_ENDS:
        last = _family(
            f"restore_point_last_{name}_timestamp_seconds",
            f"When the newest RestorePoint of each policy that ended {phase} ended.",
            labels,
        )
        newest: dict[tuple[str, str], float] = {}
        for p in points:
            if p.phase == phase and p.finished is not None:
                key = (p.namespace, p.policy)
                newest[key] = max(newest.get(key, 0.0), p.finished)
        for (namespace, policy), stamp in sorted(newest.items()):
            last.add_metric([namespace, policy], stamp)
        yield last
