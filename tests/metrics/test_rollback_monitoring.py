"""Rules around a rollback against a real Prometheus: the report's samples, verification's hold.

Metric history is written in the past and the watch's clock starts there, so a ten-minute
verification window is checked in well under a second while every number comes from
Prometheus's own range queries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest_asyncio

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rules import Rule
from rollback_operator.providers.base import MetricsSource
from rollback_operator.providers.metrics.prometheus import PrometheusFactory
from rollback_operator.reconcile import monitoring
from sandbox.services.prometheus import PrometheusServer
from tests.metrics.world import Series, minutes, origin, policy, rule

T0 = origin()


class NoSecrets:
    async def read(self, namespace: str, name: str, key: str) -> str:
        raise AssertionError("no secret is needed")


class PastClock:
    """Starts at `at` in the past; each pause moves it on without waiting."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    async def pause(self, seconds: float) -> bool:
        self.at += timedelta(seconds=seconds)
        return False


@pytest_asyncio.fixture
async def source(prometheus: PrometheusServer) -> AsyncIterator[MetricsSource]:
    factory = PrometheusFactory()
    body = policy(prometheus.url, [rule("r", "up")])
    yield await factory.build(RollbackPolicy.model_validate(body), NoSecrets())
    await factory.close()


def _rules(series: Series) -> list[Rule]:
    errors = f'sum(errors{{test="{series.label}"}})'
    latency = f'max(latency{{test="{series.label}"}})'
    error_rule = rule("api-error-rate", errors, warning={"above": 0.02}, **{"for": "2m"})
    latency_rule = rule("p95-latency", latency, critical={"above": 2.0}, autoRollback=False)
    return [Rule.model_validate(error_rule), Rule.model_validate(latency_rule)]


def _incident(series: Series) -> None:
    """Errors at 0.09 until T0+5m then 0.01 (the rollback cured them); latency 0.4 then 0.3."""
    series.gauge("errors", T0, T0 + minutes(30), lambda t: 0.09 if t < T0 + minutes(5) else 0.01)
    series.gauge("latency", T0, T0 + minutes(30), lambda t: 0.4 if t < T0 + minutes(5) else 0.3)


async def test_the_report_samples_each_rule_over_the_rollback(
    source: MetricsSource, series: Series
) -> None:
    _incident(series)
    errors, latency = await monitoring.sample_rules(
        _rules(series), source, T0 + minutes(2), T0 + minutes(10)
    )
    assert (errors.min, errors.max, errors.last, errors.worst) == (0.01, 0.09, 0.01, "Critical")
    assert errors.samples == 61  # 8 minutes at an 8 s step, both ends included
    assert (latency.min, latency.max, latency.worst) == (0.3, 0.4, "Clear")


async def test_verification_passes_once_the_window_after_the_cure_stays_clear(
    source: MetricsSource, series: Series
) -> None:
    _incident(series)
    clock = PastClock(T0 + minutes(6))
    results = await monitoring.hold_clear(
        _rules(series), source, minutes(10), clock.now, clock.pause
    )
    assert [(r.name, r.passed) for r in results] == [
        ("rule api-error-rate", True),
        ("rule p95-latency", True),
    ]
    assert "clear for 10m (worst 0.01, critical > 0.05)" in results[0].message
    assert clock.at >= T0 + minutes(16)


async def test_verification_fails_when_the_errors_are_still_there(
    source: MetricsSource, series: Series
) -> None:
    _incident(series)
    clock = PastClock(T0)  # verification started while errors were still high
    results = await monitoring.hold_clear(
        _rules(series), source, minutes(10), clock.now, clock.pause
    )
    errors = results[0]
    assert not errors.passed
    assert "0.09 past critical > 0.05 for 2m" in errors.message
    assert clock.at < T0 + minutes(4)  # failed as soon as the 2 minutes had held
    assert results[1].passed
    assert "the watch ended when another rule failed" in results[1].message
