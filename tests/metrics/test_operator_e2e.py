"""The real operator process, the real API server and a real Prometheus, in real time.

A policy whose rule has been critical for longer than its `for` gets exactly one Rollback,
owned by the policy and labelled as triggered by it; killed with SIGKILL in the middle of a
Pending window, a restarted operator keeps the breach's start and acts when `for` has passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox import manifests
from sandbox.services.prometheus import PrometheusServer
from tests.e2e.bed import Bed
from tests.metrics.world import Series, minutes

pytestmark = pytest.mark.e2e
POLICIES = "rollback.mindmate.app/v1alpha1/rollbackpolicies"
HIGH, LOW = 0.08, 0.02


def _start(bed: Bed) -> None:
    bed.start()
    bed.wait_for_watch(POLICIES)


def _policy(prometheus: PrometheusServer, series: Series, hold: str) -> dict[str, Any]:
    rule = {"name": "api-errors", "query": f'g{{test="{series.label}"}}',
            "critical": {"above": 0.05}, "for": hold, "autoRollback": True}  # fmt: skip
    return manifests.policy(
        metrics={"prometheus": {"url": prometheus.url}}, evaluationInterval="1s", rules=[rule]
    )


def _rollbacks(bed: Bed) -> list[dict[str, Any]]:
    listed = bed.cluster.kubectl("get", "rollbacks.rollback.mindmate.app", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def _wait(check: Callable[[], Any], bed: Bed, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s\n{bed.logs()[-4000:]}")
        time.sleep(0.1)
    return found


def _rule(bed: Bed) -> dict[str, Any]:
    rules: list[dict[str, Any]] = (
        bed.get("rollbackpolicy", "mindmate").get("status", {}).get("rules", [{}])
    )
    return rules[0]


def test_a_breach_older_than_for_creates_one_rollback_owned_by_the_policy(
    bed: Bed, prometheus: PrometheusServer, series: Series
) -> None:
    now = datetime.now(UTC)
    series.gauge("g", now - minutes(10), now, lambda t: HIGH if t > now - minutes(7) else LOW)
    _start(bed)
    bed.apply(_policy(prometheus, series, "5m"))
    created = _wait(lambda: _rollbacks(bed), bed, "Rollback")
    time.sleep(3)  # three more evaluations: still one
    assert len(_rollbacks(bed)) == 1
    meta = created[0]["metadata"]
    policy = bed.get("rollbackpolicy", "mindmate")
    assert meta["name"].startswith("mindmate-auto-")
    assert meta["labels"]["rollback.mindmate.app/trigger"] == "policy"
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "RollbackPolicy", "mindmate", policy["metadata"]["uid"]
    )  # fmt: skip
    assert "api-errors 0.08 above 0.05 for 5m" in created[0]["spec"]["reason"]
    status = policy["status"]
    assert status["rules"][0]["state"] == "Critical"
    assert status["lastAutomaticRollback"]["name"] == meta["name"]
    assert bed.condition(policy, "Breaching")["status"] == "True"
    assert bed.wait_for(meta["name"], {"Succeeded"})["spec"]["mode"] == "quick"
    breaches = [n for n in bed.world().state["notices"] if n["kind"] == "breach"]
    assert [n["phase"] for n in breaches] == ["Critical"]  # the policy's notifiers were told


def test_a_restart_in_the_middle_of_pending_keeps_the_breach_start(
    bed: Bed, prometheus: PrometheusServer, series: Series
) -> None:
    hold = timedelta(seconds=12)
    _start(bed)  # first: a slow start must not eat into the 12 s hold
    breach = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    # one sample a second, into the near future, so the 1 s steps see the breach start exactly
    series.gauge("g", breach - minutes(2), breach + minutes(1),
                 lambda t: HIGH if t >= breach else LOW, every=timedelta(seconds=1))  # fmt: skip
    bed.apply(_policy(prometheus, series, "12s"))
    pending = _wait(lambda: _rule(bed).get("state") == "Pending" and _rule(bed), bed, "Pending")
    assert bed.process is not None
    bed.process.kill()  # SIGKILL: nothing is flushed
    bed.process.wait()
    _start(bed)
    _wait(lambda: _rollbacks(bed), bed, "Rollback")
    time.sleep(2)
    policy = bed.get("rollbackpolicy", "mindmate")
    acted = datetime.fromisoformat(policy["status"]["lastAutomaticRollback"]["time"])
    assert _rule(bed)["since"] == pending["since"]
    assert datetime.fromisoformat(pending["since"]) <= breach + timedelta(seconds=1)
    assert acted >= breach + hold - timedelta(seconds=1), "acted before `for` had passed"
    # How soon it acts is a speed, measured by bench.policy_eval (never later than one interval);
    # that `for` counted from the breach and not from the restart is the kept `since` above.
    assert len(_rollbacks(bed)) == 1
