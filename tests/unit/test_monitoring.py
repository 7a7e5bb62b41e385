"""Rules watched around a rollback: held clear in verification, sampled for the report.

The metrics source here is a function of time, so each claim about windows and `for` is exact;
tests/metrics/test_rollback_monitoring.py runs the same code against a real Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import MonitoredRule, Phase, Rollback
from rollback_operator.api.rules import Rule
from rollback_operator.providers.base import Sample
from rollback_operator.providers.errors import ProviderError, RetryableError
from rollback_operator.reconcile import monitoring
from rollback_operator.reconcile.engine import Engine
from rollback_operator.reconcile.ports import Stopping
from rollback_operator.reconcile.report import ReportInput, render
from rollback_operator.reconcile.runner import RetryPolicy
from sandbox import manifests
from sandbox.fakes.host import MemoryHost, MemoryReports
from sandbox.fakes.memory import FakeProviderFactory, FakeWorld

T0 = datetime(2024, 1, 1, 3, tzinfo=UTC)
Shape = Callable[[datetime], float | None]


class ScriptedSource:
    """A MetricsSource whose every query follows `shape(time)`; counts range queries."""

    def __init__(self, shape: Shape, error: ProviderError | None = None) -> None:
        self.shape, self.error, self.ranges = shape, error, 0

    async def query(self, expr: str, at: datetime) -> Sample:
        if self.error:
            raise self.error
        return Sample(at, self.shape(at))

    async def query_all(self, exprs: Sequence[str], at: datetime) -> list[Sample | ProviderError]:
        return [self.error or Sample(at, self.shape(at)) for _ in exprs]

    async def history(
        self, expr: str, at: datetime, window: timedelta, step: timedelta
    ) -> list[Sample]:
        if self.error:
            raise self.error
        self.ranges += 1
        n = int(window / step)
        return [Sample(t, self.shape(t)) for t in (at - window + i * step for i in range(n + 1))]


class Clock:
    """Simulated time that `pause` moves forward; `stop_at` makes pause report shutdown."""

    def __init__(self, stop_at: datetime | None = None) -> None:
        self.at, self.stop_at, self.paused = T0, stop_at, 0.0

    def now(self) -> datetime:
        return self.at

    async def pause(self, seconds: float) -> bool:
        self.at += timedelta(seconds=seconds)
        self.paused += seconds
        return self.stop_at is not None and self.at >= self.stop_at


def _rule(for_: str = "1m", no_data: str = "ignore", **extra: Any) -> Rule:
    body: dict[str, Any] = {"name": "api-error-rate", "query": "errors", "for": for_}
    body["noData"] = no_data
    body.setdefault("warning", {"above": 0.02})
    body.setdefault("critical", {"above": 0.05})
    return Rule.model_validate({**body, **extra})


def _after(seconds: float, value: float, before: float = 0.01) -> Shape:
    return lambda t: value if t >= T0 + timedelta(seconds=seconds) else before


async def _hold(shape: Shape, window: float, rule: Rule | None = None, **kw: Any) -> Any:
    clock = Clock(**kw)
    source = ScriptedSource(shape)
    results = await monitoring.hold_clear(
        [rule or _rule()], source, timedelta(seconds=window), clock.now, clock.pause
    )
    return results, clock


async def test_a_rule_that_stays_clear_passes_after_the_whole_window() -> None:
    results, clock = await _hold(lambda t: 0.01, window=120)
    assert [(r.name, r.passed) for r in results] == [("rule api-error-rate", True)]
    assert "clear for 2m" in results[0].message
    assert clock.at - T0 >= timedelta(seconds=120)  # it watched the whole window


async def test_a_critical_value_held_for_for_fails_before_the_window_ends() -> None:
    results, clock = await _hold(_after(20, 0.09), window=600)
    assert not results[0].passed
    assert "0.09 past critical > 0.05 for 1m" in results[0].message
    assert timedelta(seconds=80) <= clock.at - T0 < timedelta(seconds=120)


async def test_a_spike_shorter_than_for_does_not_fail() -> None:
    def spike(t: datetime) -> float:
        return 0.5 if T0 + timedelta(seconds=30) <= t < T0 + timedelta(seconds=50) else 0.01

    results, _ = await _hold(spike, window=180)
    assert results[0].passed
    assert "worst 0.5" in results[0].message


async def test_for_longer_than_the_window_is_capped_at_the_window() -> None:
    results, _ = await _hold(lambda t: 0.2, window=60, rule=_rule(for_="10m"))
    assert not results[0].passed
    assert "for 1m" in results[0].message


async def test_a_zero_window_watches_nothing() -> None:
    results, clock = await _hold(lambda t: 0.06, window=0)
    assert results == []
    assert clock.paused == 0


async def test_rules_without_a_critical_threshold_are_not_watched() -> None:
    warning_only = Rule.model_validate({"name": "latency", "query": "q", "warning": {"above": 1}})
    results = await monitoring.hold_clear(
        [warning_only], ScriptedSource(lambda t: 9.0), timedelta(minutes=1), Clock().now,
        Clock().pause,
    )  # fmt: skip
    assert results == []


@pytest.mark.parametrize(
    ("no_data", "passed", "text"),
    [("ignore", True, "noData: ignore"), ("hold", False, "could not confirm clear")],
)
async def test_no_data_follows_the_rules_no_data_setting(
    no_data: str, passed: bool, text: str
) -> None:
    results, _ = await _hold(lambda t: None, window=60, rule=_rule(no_data=no_data))
    assert results[0].passed is passed
    assert text in results[0].message


async def test_no_data_as_breach_fails() -> None:
    results, _ = await _hold(lambda t: math.nan, window=120, rule=_rule(no_data="breach"))
    assert not results[0].passed
    assert "no data past critical" in results[0].message


async def test_an_unreadable_source_fails_the_check_with_the_reason() -> None:
    clock = Clock()
    source = monitoring.Unavailable(RetryableError("prometheus: connection refused"))
    results = await monitoring.hold_clear(
        [_rule()], source, timedelta(seconds=30), clock.now, clock.pause
    )
    assert not results[0].passed
    assert "metrics unreadable: prometheus: connection refused" in results[0].message


async def test_shutdown_during_the_window_stops_the_step_for_a_redo() -> None:
    with pytest.raises(Stopping):
        await _hold(lambda t: 0.01, window=600, stop_at=T0 + timedelta(seconds=30))


async def test_sampling_condenses_each_rule_over_the_range() -> None:
    source = ScriptedSource(_after(60, 0.07))
    rules = [_rule(), _rule(name="p95", warning={"above": 1.0}, critical={"above": 2.0})]
    summary = await monitoring.sample_rules(rules, source, T0, T0 + timedelta(minutes=3))
    first, second = summary
    assert (first.min, first.max, first.last, first.worst) == (0.01, 0.07, 0.07, "Critical")
    assert first.thresholds == "warning > 0.02, critical > 0.05"
    assert second.worst == "Clear"
    assert first.samples == 61  # 3 minutes at a 3 s step, both ends included


async def test_sampling_reports_a_failed_query_instead_of_numbers() -> None:
    source = ScriptedSource(lambda t: 1.0, error=RetryableError("prometheus: 503"))
    summary = await monitoring.sample_rules([_rule()], source, T0, T0 + timedelta(minutes=1))
    assert summary[0].message == "prometheus: 503"
    assert summary[0].min is None


# -- through the engine --------------------------------------------------------------------


class TickingHost(MemoryHost):
    """MemoryHost whose pause moves the shared clock instead of returning at once."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    async def pause(self, seconds: float) -> bool:
        await self.clock.pause(seconds)
        return await super().pause(seconds)


async def _engine_run(shape: Shape) -> tuple[Phase | None, MemoryHost, MemoryReports]:
    rule = _rule(autoRollback=True).model_dump(by_alias=True, exclude_none=True)
    rules = [rule]
    policy = RollbackPolicy.model_validate(
        manifests.policy(
            metrics={"prometheus": {"url": "http://prometheus.invalid"}},
            rules=rules,
            verification={"window": "2m"},
        )
    )
    rollback = Rollback.model_validate(manifests.stored(manifests.rollback()))
    clock = Clock()
    host, reports = TickingHost(clock), MemoryReports()
    providers = await FakeProviderFactory(FakeWorld()).build(policy, _NoSecrets())
    providers.metrics = ScriptedSource(shape)
    retry = RetryPolicy(max_attempts=1, base_delay=0.0, max_delay=0.0)
    engine = Engine(
        recorder=host, controls=host, clock=clock, reports=reports, retry=retry, tick=0.0
    )
    return await engine.run(rollback, policy.spec, providers), host, reports


class _NoSecrets:
    async def read(self, namespace: str, name: str, key: str) -> str:
        raise AssertionError("fakes read no secrets")


async def test_a_rollback_whose_rule_stays_critical_fails_verification() -> None:
    phase, host, reports = await _engine_run(lambda t: 0.12)
    assert phase == Phase.PARTIALLY_FAILED
    checks = {c.name: c for c in host.last.verification}
    assert not checks["rule api-error-rate"].passed
    report = next(iter(reports.reports.values()))
    assert "FAIL rule api-error-rate: 0.12 past critical > 0.05 for 1m" in report
    assert "| api-error-rate | warning > 0.02, critical > 0.05 | 0.12 | 0.12 | 0.12 |" in report


async def test_a_rollback_that_cures_the_rule_succeeds_and_reports_the_values() -> None:
    phase, host, reports = await _engine_run(lambda t: 0.01)
    assert phase == Phase.SUCCEEDED
    assert [m.name for m in host.last.monitoring] == ["api-error-rate"]
    assert host.last.monitoring[0].worst == "Clear"
    report = next(iter(reports.reports.values()))
    assert "## Monitoring during the rollback" in report
    assert "PASS rule api-error-rate: clear for 2m" in report


def test_the_report_shows_a_rule_that_could_not_be_sampled() -> None:
    rollback = Rollback.model_validate(manifests.stored(manifests.rollback()))
    rollback.status.monitoring = [MonitoredRule(name="db-connections", message="prometheus: 503")]
    text = render(ReportInput(rollback, rollback.status, Phase.SUCCEEDED, T0))
    assert "| db-connections | - | - | - | - | - | prometheus: 503 |" in text
