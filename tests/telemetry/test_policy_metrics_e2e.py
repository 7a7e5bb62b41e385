"""Policy metrics from the operator process, against a real Prometheus: the rule's value and
thresholds as series, one breach per episode and severity, one suppression per episode and
reason, and nothing counted again by a restarted operator for what it finds already recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from sandbox import manifests
from sandbox.services.prometheus import PrometheusServer
from tests.metrics.world import Series, minutes
from tests.telemetry.conftest import MetricsBed, Samples, named, sample

pytestmark = pytest.mark.e2e
POLICIES = "rollback.mindmate.app/v1alpha1/rollbackpolicies"
HIGH = 0.08
RULE_VALUE = "rollback_operator_policy_rule_value"
T = TypeVar("T")


def _start(bed: MetricsBed) -> None:
    bed.start()
    bed.wait_for_watch(POLICIES)


def _policy(prometheus: PrometheusServer, series: Series) -> dict[str, Any]:
    rule = {"name": "api-errors", "query": f'g{{test="{series.label}"}}', "for": "5m",
            "warning": {"above": 0.02}, "critical": {"above": 0.05},
            "autoRollback": True}  # fmt: skip
    return manifests.policy(
        metrics={"prometheus": {"url": prometheus.url}}, evaluationInterval="1s", rules=[rule],
        suspend=True,
    )  # fmt: skip


def _until(bed: MetricsBed, check: Callable[[Samples], T | None], what: str) -> T:
    deadline = time.monotonic() + 30
    while (found := check(bed.scrape())) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} on /metrics\n{bed.logs()[-3000:]}")
        time.sleep(0.1)
    return found


def test_a_suspended_policy_in_breach_shows_value_thresholds_one_breach_one_suppression(
    mbed: MetricsBed, prometheus: PrometheusServer, series: Series
) -> None:
    now = datetime.now(UTC)
    series.gauge("g", now - minutes(10), now + minutes(2), lambda t: HIGH)
    _start(mbed)
    mbed.apply(_policy(prometheus, series))
    on = {"rollback_namespace": mbed.namespace, "policy": "mindmate"}
    suppressed = {**on, "reason": "Suspended"}

    rule = {**on, "rule": "api-errors"}

    def counted(s: Samples) -> Samples | None:
        """The suppression counted on save, and the saved status seen by the watch."""
        told = sample(s, "rollback_operator_automatic_rollbacks_suppressed_total", **suppressed)
        seen = sample(s, "rollback_operator_policy_rule_state", **rule, state="Critical")
        return s if told and seen else None

    samples = _until(mbed, counted, "suppression")
    assert sample(samples, "rollback_operator_policy_rule_value", **rule) == HIGH
    assert named(samples, "rollback_operator_policy_rule_threshold") == {
        frozenset({**rule, "severity": "warning", "direction": "above"}.items()): 0.02,
        frozenset({**rule, "severity": "critical", "direction": "above"}.items()): 0.05,
    }
    assert named(samples, "rollback_operator_policy_breaches_total") == {
        frozenset({**rule, "severity": "critical"}.items()): 1.0  # straight to Critical: once
    }
    assert named(samples, "rollback_operator_automatic_rollbacks_suppressed_total") == {
        frozenset(suppressed.items()): 1.0
    }
    assert sample(samples, "rollback_operator_policy_rule_state", **rule, state="Critical") == 1
    assert sample(samples, "rollback_operator_policy_metrics_reachable", **on) == 1
    assert sample(samples, "rollback_operator_policy_suspended", **on) == 1
    queried = {"provider": "prometheus", "outcome": "ok"}
    assert sample(samples, "rollback_operator_provider_request_duration_seconds_count", **queried)
    status = mbed.get("rollbackpolicy", "mindmate")["status"]
    assert status["suppressed"] == {"Suspended": 1}
    assert status["rules"][0]["episode"]["announced"] == "Critical"

    assert mbed.process is not None
    mbed.process.kill()  # SIGKILL, then a new process with fresh counters
    mbed.process.wait()
    _start(mbed)
    again = _until(mbed, lambda s: s if sample(s, RULE_VALUE, **rule) else None,
                   "a round of the restarted operator")  # fmt: skip
    assert sample(again, "rollback_operator_policy_rule_value", **rule) == HIGH
    assert named(again, "rollback_operator_policy_breaches_total") == {}
    assert named(again, "rollback_operator_automatic_rollbacks_suppressed_total") == {}
