"""The state gauges say what each watched object is now, and forget it when it is gone."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from rollback_operator.api.conditions import ConditionType, Reason
from rollback_operator.api.rollback import Phase, RollbackStatus
from rollback_operator.providers import errors, http
from rollback_operator.reconcile import transitions
from rollback_operator.telemetry.metrics import Telemetry

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
CREATED = "2026-12-07T07:00:00Z"


def _rollback(phase: Phase, *, traffic_stopped: bool = False, started: bool = True) -> Any:
    status = RollbackStatus()
    transitions.enter(status, phase, "m", now=NOW, generation=1)
    status.started_at = NOW if started else None
    if traffic_stopped:
        transitions.mark(status, ConditionType.TRAFFIC_STOPPED, True, Reason.KEPT_STOPPED,
                         "frontend stopped", now=NOW, generation=1)  # fmt: skip
    return {
        "metadata": {"name": "rb", "namespace": "prod", "uid": "u1", "creationTimestamp": CREATED},
        "spec": {"policyRef": {"name": "mindmate"}, "mode": "full"},
        "status": status.wire(),
    }


def _get(t: Telemetry, name: str, **labels: str) -> float | None:
    return t.registry.get_sample_value(f"rollback_operator_{name}", labels)


def test_a_running_rollback_counts_as_active_since_it_started_and_not_once_it_ended() -> None:
    t = Telemetry()
    t.states.see("Rollback", "u1", _rollback(Phase.RUNNING))
    assert _get(t, "active_rollbacks", phase="Running") == 1
    assert _get(t, "active_rollbacks", phase="Queued") == 0
    since = {"rollback_namespace": "prod", "rollback": "rb", "phase": "Running", "mode": "full"}
    assert _get(t, "rollback_phase_since_timestamp_seconds", **since) == NOW.timestamp()
    t.states.see("Rollback", "u1", _rollback(Phase.SUCCEEDED))
    assert _get(t, "active_rollbacks", phase="Running") == 0
    assert _get(t, "rollback_phase_since_timestamp_seconds", **since) is None
    ended = {**since, "phase": "Succeeded"}
    assert _get(t, "rollback_finished_timestamp_seconds", **ended) == NOW.timestamp()


def test_a_rollback_waiting_for_approval_counts_from_its_creation() -> None:
    t = Telemetry()
    t.states.see("Rollback", "u1", _rollback(Phase.AWAITING_APPROVAL, started=False))
    labels = {"rollback_namespace": "prod", "rollback": "rb", "phase": "AwaitingApproval"}
    created = datetime.fromisoformat(CREATED).timestamp()
    assert _get(t, "rollback_phase_since_timestamp_seconds", **labels, mode="full") == created


def test_traffic_left_stopped_by_a_failed_rollback_shows_until_it_is_deleted() -> None:
    t = Telemetry()
    t.states.see("Rollback", "u1", _rollback(Phase.FAILED, traffic_stopped=True))
    labels = {"rollback_namespace": "prod", "rollback": "rb", "phase": "Failed"}
    assert _get(t, "traffic_stopped", **labels) == 1
    assert _get(t, "rollback_finished_timestamp_seconds", **labels, mode="full") is not None
    t.states.forget("Rollback", "u1")
    assert _get(t, "traffic_stopped", **labels) is None
    assert _get(t, "rollback_finished_timestamp_seconds", **labels, mode="full") is None


def _policy(ready_reason: str, rules: list[dict[str, Any]], suspend: bool = False) -> Any:
    ready = {"type": "Ready", "status": "False" if ready_reason != "Evaluating" else "True",
             "reason": ready_reason, "message": "", "lastTransitionTime": CREATED}  # fmt: skip
    return {
        "metadata": {"name": "mindmate", "namespace": "prod", "uid": "p1"},
        "spec": {"suspend": suspend},
        "status": {"conditions": [ready], "rules": rules},
    }


def test_a_policy_that_cannot_reach_prometheus_reads_zero_and_its_rules_their_state() -> None:
    t = Telemetry()
    rules = [{"name": "errors", "state": "Error"}, {"name": "cache", "state": "Critical"}]
    t.states.see("RollbackPolicy", "p1", _policy("MetricsUnreachable", rules, suspend=True))
    on = {"rollback_namespace": "prod", "policy": "mindmate"}
    assert _get(t, "policy_metrics_reachable", **on) == 0
    assert _get(t, "policy_suspended", **on) == 1
    assert _get(t, "policy_rule_state", **on, rule="errors", state="Error") == 1
    assert _get(t, "policy_rule_state", **on, rule="errors", state="Ok") == 0
    assert _get(t, "policy_rule_state", **on, rule="cache", state="Critical") == 1
    t.states.see("RollbackPolicy", "p1", _policy("Evaluating", rules))
    assert _get(t, "policy_metrics_reachable", **on) == 1
    assert _get(t, "policy_suspended", **on) == 0


def _point(uid: str, phase: str, finished: str | None) -> Any:
    return {
        "metadata": {"name": uid, "namespace": "prod", "uid": uid, "creationTimestamp": CREATED},
        "spec": {"policyRef": {"name": "mindmate"}},
        "status": {"phase": phase, "finishedAt": finished},
    }


def test_restore_points_give_each_policy_its_newest_success_and_failure() -> None:
    t = Telemetry()
    t.states.see("RestorePoint", "a", _point("a", "Succeeded", "2026-12-07T01:00:00Z"))
    t.states.see("RestorePoint", "b", _point("b", "Succeeded", "2026-12-07T07:00:00Z"))
    t.states.see("RestorePoint", "c", _point("c", "Failed", "2026-12-07T07:30:00Z"))
    t.states.see("RestorePoint", "d", _point("d", "Running", None))
    on = {"rollback_namespace": "prod", "policy": "mindmate"}
    stamp = datetime(2026, 12, 7, 7, tzinfo=UTC).timestamp()
    assert _get(t, "restore_point_last_success_timestamp_seconds", **on) == stamp
    assert _get(t, "restore_point_last_failure_timestamp_seconds", **on) == stamp + 1800
    assert _get(t, "restore_points", **on, phase="Running") == 1
    assert _get(t, "restore_points", **on, phase="Succeeded") == 2


def test_build_info_names_the_version() -> None:
    t = Telemetry()
    families = {m.name: m for m in t.registry.collect()}
    (info,) = families["rollback_operator_build_info"].samples
    assert info.value == 1
    assert info.labels["version"]


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, "server_error"), (429, "rate_limited"), (401, "unauthorized"), (422, "refused")],
)
async def test_every_attempt_to_a_provider_is_measured_and_failures_counted_by_kind(
    status: int, kind: str
) -> None:
    t = Telemetry()
    answers = iter([httpx.Response(status, headers={"Retry-After": "0"}), httpx.Response(200)])
    transport = httpx.MockTransport(lambda request: next(answers))
    options = http.Options(transport=transport, sleep=_no_sleep)
    token = http.OBSERVER.set(t)
    try:
        async with http.Http("vercel", "https://api.vercel.com", {}, options).session() as s:
            with contextlib.suppress(errors.ProviderError):  # a refusal ends here
                await s.send(http.Call("probe", "GET", "/v1/x"))
    finally:
        http.OBSERVER.reset(token)
    assert _get(t, "provider_errors_total", provider="vercel", kind=kind) == 1
    failed = _get(t, "provider_request_duration_seconds_count", provider="vercel", outcome="error")
    assert failed == 1
    retried = status in (500, 429)
    ok = _get(t, "provider_request_duration_seconds_count", provider="vercel", outcome="ok")
    assert ok == (1 if retried else None)


async def _no_sleep(_: float) -> None:
    return None
