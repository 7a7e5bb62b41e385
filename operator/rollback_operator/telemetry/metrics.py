"""The operator's Prometheus instruments, their registry, and the /metrics HTTP server.

Why a registry of our own rather than prometheus_client's global one: two operators in one
process (as in tests) never share counts, and a test reads exact values from a fresh one. The
record methods take plain values; `telemetry.observe` decides when something happened, and
`telemetry.states` adds the gauges computed from the objects as they are now.

Every name starts with `PREFIX`. Labels naming an object's namespace are `rollback_namespace`:
Prometheus Operator gives every scraped series a `namespace` label (the operator's own), and a
metric label of that name would be renamed `exported_namespace` on the way in.

`app.run` makes one `Telemetry` per operator run and hands it to the handlers on `Deps`.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from rollback_operator import __version__
from rollback_operator.telemetry.states import PREFIX, States

ROLLBACK_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
STEP_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)
POLICY = ("rollback_namespace", "policy")


@dataclass(frozen=True)
class ThresholdLine:
    """One threshold of one rule, as a series next to the rule's value."""

    rule: str
    severity: str  # warning | critical
    direction: str  # above | below
    value: float


@dataclass
class PolicyCounts:
    """What this process has counted for one policy (see `telemetry.observe`)."""

    breaches: set[tuple[str, str]] = field(default_factory=set)
    suppressed: dict[str, int] = field(default_factory=dict)
    generation: int | None = None


class Telemetry:
    """Every metric the operator exposes, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        counter = partial(Counter, registry=self.registry, namespace=PREFIX.rstrip("_"))
        gauge = partial(Gauge, registry=self.registry, namespace=PREFIX.rstrip("_"))
        histogram = partial(Histogram, registry=self.registry, namespace=PREFIX.rstrip("_"))
        self.build_info = gauge(
            "build_info", "Always 1: the operator's version and Python.", ["version", "python"]
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.rollbacks = counter(
            "rollbacks",
            "Rollbacks that reached a terminal phase (result), by mode and trigger.",
            ["mode", "trigger", "result"],
        )
        self.rollback_duration = histogram(
            "rollback_duration_seconds",
            "From startedAt to finishedAt of rollbacks that ran steps.",
            ["mode", "result"],
            buckets=ROLLBACK_BUCKETS,
        )
        self.step_duration = histogram(
            "step_duration_seconds",
            "From startedAt to finishedAt of each finished step (all its attempts).",
            ["step", "target"],
            buckets=STEP_BUCKETS,
        )
        self.rule_value = gauge(
            "policy_rule_value", "Last value of each policy rule.", [*POLICY, "rule"]
        )
        self.rule_threshold = gauge(
            "policy_rule_threshold",
            "Warning and critical thresholds of each policy rule.",
            [*POLICY, "rule", "severity", "direction"],
        )
        self.breaches = counter(
            "policy_breaches",
            "Breach episodes that reached warning or critical (one per episode and severity).",
            [*POLICY, "rule", "severity"],
        )
        self.suppressed = counter(
            "automatic_rollbacks_suppressed",
            "Automatic rollbacks not created, by reason (one per episode and reason).",
            [*POLICY, "reason"],
        )
        self.request_duration = histogram(
            "provider_request_duration_seconds",
            "Each HTTP request to a provider's API (each attempt), by provider and outcome.",
            ["provider", "outcome"],
            buckets=REQUEST_BUCKETS,
        )
        self.request_errors = counter(
            "provider_errors",
            "HTTP requests to a provider's API that failed (each attempt), by kind.",
            ["provider", "kind"],
        )
        self.states = States()
        self.registry.register(self.states)
        self.policies: dict[str, PolicyCounts] = {}
        self._rules: dict[tuple[str, str], set[str]] = {}
        self._thresholds: dict[tuple[str, str], set[tuple[str, str, str]]] = {}

    def rollback_finished(
        self, *, mode: str, trigger: str, result: str, seconds: float | None
    ) -> None:
        """A rollback entered a terminal phase; `seconds` is None when no step ever ran."""
        self.rollbacks.labels(mode=mode, trigger=trigger, result=result).inc()
        if seconds is not None:
            self.rollback_duration.labels(mode=mode, result=result).observe(max(0.0, seconds))

    def step_finished(self, *, step: str, target: str, seconds: float) -> None:
        """A step ended (Succeeded or Failed) after `seconds`."""
        self.step_duration.labels(step=step, target=target).observe(max(0.0, seconds))

    def rule_values(self, namespace: str, policy: str, values: Mapping[str, float | None]) -> None:
        """This round's values; a rule without a value (no data, error) or gone has no series."""
        key = (namespace, policy)
        for rule in self._rules.get(key, set()) - {r for r, v in values.items() if v is not None}:
            self.rule_value.remove(namespace, policy, rule)
        for rule, value in values.items():
            if value is not None:
                self.rule_value.labels(namespace, policy, rule).set(value)
        self._rules[key] = {r for r, v in values.items() if v is not None}

    def thresholds(self, namespace: str, policy: str, lines: Iterable[ThresholdLine]) -> None:
        """The policy's thresholds now; series of removed rules or thresholds go away."""
        key = (namespace, policy)
        wanted = {(t.rule, t.severity, t.direction): t.value for t in lines}
        for gone in self._thresholds.get(key, set()) - wanted.keys():
            self.rule_threshold.remove(namespace, policy, *gone)
        for labels, value in wanted.items():
            self.rule_threshold.labels(namespace, policy, *labels).set(value)
        self._thresholds[key] = set(wanted)

    def breach(self, namespace: str, policy: str, rule: str, severity: str) -> None:
        """A rule's episode reached `severity` (warning or critical)."""
        self.breaches.labels(namespace, policy, rule, severity).inc()

    def suppression(self, namespace: str, policy: str, reason: str, count: int = 1) -> None:
        """`count` automatic rollbacks were suppressed for `reason`."""
        self.suppressed.labels(namespace, policy, reason).inc(count)

    def provider_request(self, provider: str, seconds: float, error: str | None) -> None:
        """One attempt of an HTTP request to `provider`; `error` is its kind when it failed."""
        outcome = "ok" if error is None else "error"
        self.request_duration.labels(provider, outcome).observe(max(0.0, seconds))
        if error is not None:
            self.request_errors.labels(provider, error).inc()

    def serve(self, port: int, address: str = "0.0.0.0") -> MetricsServer:
        """Serve /metrics on `port` in a thread until `MetricsServer.close`."""
        server, thread = start_http_server(port, addr=address, registry=self.registry)
        return MetricsServer(server, thread)


@dataclass
class MetricsServer:
    """The running /metrics endpoint."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (useful when started on port 0)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
