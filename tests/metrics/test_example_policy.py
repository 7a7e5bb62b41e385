"""The runbook's policy (examples/mindmate-policy.yaml): every rule breaches and recovers.

Each scenario writes the metrics the example documents, healthy, then bad, then healthy again,
and evaluates the whole policy every 30 s across it. The rule must go Pending, then Critical
no sooner than `for` after the data went bad and soon after that, create one Rollback (or none
for the alert-only rule), announce each state once, and be Ok again at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import yaml

from rollback_operator.api.common import parse_duration
from sandbox.kube.cluster import REPO_ROOT
from sandbox.services.prometheus import PrometheusServer
from tests.metrics.conftest import MakeHarness
from tests.metrics.world import Manifest, Series, isolate, minutes, origin

EXAMPLE = REPO_ROOT / "examples" / "mindmate-policy.yaml"
METRICS = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "db_connection_failures_total",
    "cache_hits_total",
    "cache_requests_total",
    "pg_stat_activity_count",
    "pg_settings_max_connections",
    "process_resident_memory_bytes",
    "user_reported_issues_total",
}
Bad = Callable[[datetime], bool]


@dataclass(frozen=True)
class Scenario:
    """One rule's story: which data, bad from `start` to `end` minutes, within `total`."""

    rule: str
    write: Callable[[Series, datetime, datetime, Bad], None]
    start: float = 5
    end: float = 20
    total: float = 30
    lag: float = 1.5
    """Minutes the query itself may lag the data (rate windows) before it crosses."""
    critical_from: float | None = None
    """Minute the data becomes critical, when later than `start` (warning first)."""


def _requests(service: str, errors: float) -> Callable[[Series, datetime, datetime, Bad], None]:
    def write(s: Series, t0: datetime, t1: datetime, bad: Bad) -> None:
        s.counter("http_requests_total", t0, t1, lambda t: 10 - errors * bad(t),
                  service=service, code="200")  # fmt: skip
        s.counter("http_requests_total", t0, t1, lambda t: errors * bad(t),
                  service=service, code="500")  # fmt: skip

    return write


def _failures(s: Series, t0: datetime, t1: datetime, bad: Bad) -> None:
    s.counter("db_connection_failures_total", t0, t1, lambda t: 20 / 60 * bad(t))


def _cache(s: Series, t0: datetime, t1: datetime, bad: Bad) -> None:
    s.counter("cache_requests_total", t0, t1, lambda t: 100.0)
    s.counter("cache_hits_total", t0, t1, lambda t: 70.0 if bad(t) else 95.0)


def _latency(s: Series, t0: datetime, t1: datetime, bad: Bad) -> None:
    """All requests under 100 ms when healthy; 0.5-1 s in minutes 5-12; 1-2.5 s after."""

    def slowest(t: datetime) -> float:
        if not bad(t):
            return 0.1
        return 1.0 if t - t0 < minutes(12) else 2.5

    def bucket(bound: float) -> Callable[[datetime], float]:
        return lambda t: 10.0 if slowest(t) <= bound else 0.0

    for le in ("0.1", "0.5", "1", "2.5", "+Inf"):
        name = "http_request_duration_seconds_bucket"
        s.counter(name, t0, t1, bucket(float(le)), service="api", le=le)


def _connections(s: Series, t0: datetime, t1: datetime, bad: Bad) -> None:
    s.gauge("pg_stat_activity_count", t0, t1, lambda t: 95.0 if bad(t) else 50.0, state="active")
    s.gauge("pg_settings_max_connections", t0, t1, lambda t: 100.0)


SCENARIOS = [
    Scenario("api-error-rate", _requests("api", 1.0)),
    Scenario("frontend-error-rate", _requests("frontend", 0.5)),
    Scenario("database-connection-failures", _failures, end=10, total=16),
    Scenario("cache-hit-rate", _cache, start=5, end=30, total=42, lag=4),
    Scenario("response-time", _latency, start=5, end=24, total=34, lag=2, critical_from=12),
    Scenario("database-connections", _connections, lag=0.5),
]


def example(url: str, label: str) -> Manifest:
    """The example policy, pointed at `url`, its queries limited to this test's series."""
    body: Manifest = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"].update(namespace="default", uid="uid-mindmate")
    body["spec"]["metrics"]["prometheus"]["url"] = url
    for rule in body["spec"]["rules"]:
        rule["query"] = isolate(rule["query"], label, METRICS)
    return body


def test_the_example_documents_every_metric_its_queries_use() -> None:
    text = EXAMPLE.read_text()
    header = text.split("apiVersion:")[0]
    assert all(name in header for name in METRICS)
    for rule in yaml.safe_load(text)["spec"]["rules"]:
        marked = isolate(rule["query"], "x", METRICS)
        assert marked.count('test="x"') >= 1, rule["name"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.rule)
async def test_each_rule_breaches_and_recovers(
    scenario: Scenario, prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    bad_from, bad_to = t0 + minutes(scenario.start), t0 + minutes(scenario.end)
    scenario.write(series, t0, t0 + minutes(scenario.total), lambda t: bad_from <= t < bad_to)
    run = harness(example(prometheus.url, series.label))
    await run.run(t0 + minutes(1), t0 + minutes(scenario.total))

    spec = next(r for r in run.manifest["spec"]["rules"] if r["name"] == scenario.rule)
    hold = parse_duration(spec["for"])
    critical, went_critical = run.first(scenario.rule, "Critical"), bad_from
    if scenario.critical_from is not None:
        went_critical = t0 + minutes(scenario.critical_from)
    assert run.first(scenario.rule, "Pending") is not None
    assert critical is not None, run.states(scenario.rule)
    assert critical >= went_critical + hold - timedelta(seconds=30), "declared before `for`"
    assert critical <= went_critical + hold + minutes(scenario.lag), "declared late"
    assert run.states(scenario.rule)[-1][1] == "Ok"
    assert run.host.reasons().count("RuleCritical") == 1
    _assert_rollbacks(run.host.rollbacks, scenario.rule, spec["autoRollback"])
    if scenario.rule == "response-time":
        assert run.first(scenario.rule, "Warning") is not None
        assert run.host.reasons().count("RuleWarning") == 1


def _assert_rollbacks(rollbacks: list[Manifest], rule: str, automatic: bool) -> None:
    if not automatic:
        assert rollbacks == []
        return
    assert len(rollbacks) == 1
    spec = rollbacks[0]["spec"]
    assert spec["mode"] == "quick"
    assert spec["targets"] == ["frontend", "backend"]
    assert rule in spec["reason"]
    assert "RollbackPolicy mindmate" in spec["reason"]
