"""Outcomes are judged from the stored status and the one being saved, so each counts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rollback_operator.api.policy import RollbackPolicyStatus
from rollback_operator.api.rollback import Phase, RollbackStatus, StepState, StepStatus
from rollback_operator.api.rules import Episode, Rule, RuleState, RuleStatus
from rollback_operator.telemetry import observe
from rollback_operator.telemetry.metrics import Telemetry, ThresholdLine

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _status(*steps: StepStatus, phase: Phase = Phase.RUNNING) -> RollbackStatus:
    return RollbackStatus(phase=phase, mode="quick", steps=list(steps), started_at=T0)


def _step(name: str, state: StepState, attempts: int = 1, seconds: float = 2.0) -> StepStatus:
    ended = state in (StepState.SUCCEEDED, StepState.FAILED)
    return StepStatus.model_validate({
        "name": name, "target": "frontend", "state": state, "attempts": attempts,
        "startedAt": T0, "finishedAt": T0 + timedelta(seconds=seconds) if ended else None,
    })  # fmt: skip


def test_a_step_ending_in_this_save_is_reported_with_its_duration() -> None:
    saved = _status(_step("frontend-rollback", StepState.RUNNING)).wire()
    now = _status(_step("frontend-rollback", StepState.SUCCEEDED, seconds=2.5))
    ended = observe.ended_steps(saved, now)
    assert ended == [observe.StepEnd("frontend-rollback", "frontend", "Succeeded", 2.5, 1)]


def test_a_step_already_ended_in_the_stored_status_is_not_reported_again() -> None:
    done = _status(_step("frontend-rollback", StepState.FAILED))
    assert observe.ended_steps(done.wire(), done) == []
    skipped = _status(_step("verify", StepState.SKIPPED))
    assert observe.ended_steps(_status(_step("verify", StepState.PENDING)).wire(), skipped) == []


def test_a_terminal_phase_is_reported_only_when_entered() -> None:
    running = _status()
    done = _status(phase=Phase.PARTIALLY_FAILED)
    assert observe.ended_phase(running.wire(), done) == "PartiallyFailed"
    assert observe.ended_phase(done.wire(), done) is None
    assert observe.ended_phase({}, _status(phase=Phase.PLANNED)) == "Planned"


def test_run_seconds_needs_both_ends() -> None:
    done = _status(phase=Phase.SUCCEEDED).model_copy(update={"finished_at": T0 + timedelta(90)})
    assert observe.run_seconds(done) == 90 * 86400
    assert observe.run_seconds(_status(phase=Phase.FAILED)) is None


def test_trigger_names_policies_gitops_tools_and_people() -> None:
    label = "rollback.mindmate.app/trigger"
    assert observe.trigger_of({label: "policy"}, {}) == "automatic"
    assert observe.trigger_of({label: "manual"}, {}) == "manual"
    assert observe.trigger_of({}, {}) == "manual"
    assert observe.trigger_of({"kustomize.toolkit.fluxcd.io/name": "apps"}, {}) == "gitops"
    assert observe.trigger_of({}, {"argocd.argoproj.io/tracking-id": "app:x/y"}) == "gitops"
    assert observe.trigger_of({label: "gitops"}, {}) == "gitops"


def _rule(state: RuleState, announced: RuleState | None, value: float | None = 0.08) -> RuleStatus:
    episode = Episode(since=T0, announced=announced) if announced else None
    return RuleStatus(name="errors", state=state, value=value, episode=episode)


def _policy(*rules: RuleStatus, **suppressed: int) -> RollbackPolicyStatus:
    return RollbackPolicyStatus(rules=list(rules), suppressed=suppressed)


def _count(t: Telemetry, name: str, **labels: str) -> float | None:
    return t.registry.get_sample_value(
        name, {"rollback_namespace": "prod", "policy": "mindmate", **labels}
    )


def _record(t: Telemetry, status: RollbackPolicyStatus) -> None:
    observe.record_policy(t, "uid-1", "prod", "mindmate", status)


def test_a_breach_already_announced_before_this_process_started_is_not_counted() -> None:
    t = Telemetry()
    stored = _policy(_rule(RuleState.WARNING, RuleState.WARNING), Cooldown=4)
    observe.start_policy(t, "uid-1", stored)
    _record(t, stored)
    assert (
        _count(t, "rollback_operator_policy_breaches_total", rule="errors", severity="warning")
        is None
    )
    assert (
        _count(t, "rollback_operator_automatic_rollbacks_suppressed_total", reason="Cooldown")
        is None
    )
    assert _count(t, "rollback_operator_policy_rule_value", rule="errors") == 0.08


def test_each_episode_counts_once_per_severity_and_suppressions_by_their_increase() -> None:
    t = Telemetry()
    observe.start_policy(t, "uid-1", _policy(_rule(RuleState.OK, None, 0.01)))
    warning = _policy(_rule(RuleState.WARNING, RuleState.WARNING))
    critical = _policy(_rule(RuleState.CRITICAL, RuleState.CRITICAL), Suspended=1)
    for status in (warning, warning, critical, critical, warning):  # the last: a replayed round
        _record(t, status)
    _record(t, _policy(_rule(RuleState.CRITICAL, RuleState.CRITICAL), Suspended=3))
    assert (
        _count(t, "rollback_operator_policy_breaches_total", rule="errors", severity="warning") == 1
    )
    assert (
        _count(t, "rollback_operator_policy_breaches_total", rule="errors", severity="critical")
        == 1
    )
    assert (
        _count(t, "rollback_operator_automatic_rollbacks_suppressed_total", reason="Suspended") == 3
    )


def test_a_new_episode_of_the_same_rule_counts_again() -> None:
    t = Telemetry()
    observe.start_policy(t, "uid-1", _policy())
    _record(t, _policy(_rule(RuleState.CRITICAL, RuleState.CRITICAL)))
    later = RuleStatus(
        name="errors", state=RuleState.CRITICAL, value=0.1,
        episode=Episode(since=T0 + timedelta(hours=2), announced=RuleState.CRITICAL),
    )  # fmt: skip
    _record(t, _policy(later))
    assert (
        _count(t, "rollback_operator_policy_breaches_total", rule="errors", severity="critical")
        == 2
    )


def test_thresholds_are_set_per_generation() -> None:
    t = Telemetry()
    rule: dict[str, Any] = {"name": "errors", "query": "q", "warning": {"above": 0.02},
                            "critical": {"above": 0.05}}  # fmt: skip
    assert observe.thresholds_stale(t, "uid-1", 1)
    observe.set_thresholds(t, "uid-1", "prod", "mindmate", 1, [Rule.model_validate(rule)])
    assert not observe.thresholds_stale(t, "uid-1", 1)
    assert observe.thresholds_stale(t, "uid-1", 2)
    line = {"rule": "errors", "direction": "above"}
    assert _count(t, "rollback_operator_policy_rule_threshold", severity="warning", **line) == 0.02
    assert _count(t, "rollback_operator_policy_rule_threshold", severity="critical", **line) == 0.05
    below = {"name": "hits", "query": "q", "critical": {"below": 0.8}}
    assert observe.threshold_lines([Rule.model_validate(below)]) == [
        ThresholdLine("hits", "critical", "below", 0.8)
    ]
