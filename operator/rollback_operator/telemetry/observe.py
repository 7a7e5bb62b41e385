"""What just happened, judged from a status before and after a save, so each outcome counts once.

Why this module exists: counting where the work is done would count a step again when a
restarted operator redoes it, or a rollback again when its daemon resumes. Counting a change
of the stored status instead is exact: a rollback is counted when the save that makes it
terminal succeeds, a step when the save that records its end succeeds; a restarted operator
starts from the stored status, which already has both. Policies are judged the same way against
what this process has already counted for them, which starts from their stored status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollback_operator.api import TRIGGER_LABEL
from rollback_operator.api.policy import RollbackPolicyStatus
from rollback_operator.api.rollback import TERMINAL_PHASES, RollbackStatus, StepState, StepStatus
from rollback_operator.api.rules import Rule, RuleState
from rollback_operator.telemetry.metrics import PolicyCounts, Telemetry, ThresholdLine

_TERMINAL = {p.value for p in TERMINAL_PHASES}
_ENDED = (StepState.SUCCEEDED, StepState.FAILED)
_SEVERITY = {RuleState.WARNING: 1, RuleState.CRITICAL: 2}
GITOPS_MARKS = (
    "argocd.argoproj.io/instance",
    "argocd.argoproj.io/tracking-id",
    "kustomize.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/name",
)
"""Labels or annotations Argo CD and Flux put on what they apply."""


def trigger_of(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    """automatic (created by a policy), gitops (applied by Argo CD or Flux), or manual."""
    given = labels.get(TRIGGER_LABEL, "")
    if given == "policy":
        return "automatic"
    if given == "gitops" or any(m in labels or m in annotations for m in GITOPS_MARKS):
        return "gitops"
    return "manual"


@dataclass(frozen=True)
class StepEnd:
    """A step whose end was just saved."""

    name: str
    target: str
    state: str
    seconds: float
    attempts: int


def _key(step: Mapping[str, Any] | StepStatus) -> tuple[str, str]:
    if isinstance(step, StepStatus):
        return step.name, step.target.value if step.target else ""
    return str(step.get("name", "")), str(step.get("target") or "")


def _before(saved: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {_key(s): s for s in saved.get("steps") or [] if isinstance(s, Mapping)}


def ended_steps(saved: Mapping[str, Any], status: RollbackStatus) -> list[StepEnd]:
    """Steps that are Succeeded or Failed in `status` but were not in the stored `saved`."""
    before, found = _before(saved), []
    for step in status.steps:
        was = before.get(_key(step), {}).get("state")
        if step.state not in _ENDED or was == step.state.value:
            continue
        if step.started_at is None or step.finished_at is None:
            continue
        seconds = (step.finished_at - step.started_at).total_seconds()
        name, target = _key(step)
        found.append(StepEnd(name, target, step.state.value, seconds, step.attempts))
    return found


def ended_phase(saved: Mapping[str, Any], status: RollbackStatus) -> str | None:
    """The terminal phase `status` enters, if the stored one was not terminal yet."""
    phase = status.phase.value if status.phase else None
    if phase in _TERMINAL and saved.get("phase") not in _TERMINAL:
        return phase
    return None


def run_seconds(status: RollbackStatus) -> float | None:
    """startedAt to finishedAt, when the rollback ran steps."""
    if status.started_at is None or status.finished_at is None:
        return None
    return (status.finished_at - status.started_at).total_seconds()


def threshold_lines(rules: Sequence[Rule]) -> list[ThresholdLine]:
    """Each rule's warning and critical thresholds."""
    lines = []
    for rule in rules:
        for severity, threshold in (("warning", rule.warning), ("critical", rule.critical)):
            if threshold is None:
                continue
            above = threshold.above is not None
            value = threshold.above if above else threshold.below
            assert value is not None
            lines.append(ThresholdLine(rule.name, severity, "above" if above else "below", value))
    return lines


def _announced(status: RollbackPolicyStatus) -> set[tuple[str, str]]:
    """(episode, severity) of every breach announced so far: a rule that went straight to
    Critical counts once, as critical; one that went Warning, then Critical, counts both."""
    found = set()
    for rule in status.rules:
        episode = rule.episode
        if episode is None or episode.announced not in _SEVERITY:
            continue
        since = episode.since.isoformat()
        found.add((f"{rule.name}@{since}", str(episode.announced).lower()))
    return found


def start_policy(telemetry: Telemetry, uid: str, stored: RollbackPolicyStatus) -> None:
    """Take the stored status as counted already, the first time this process sees the policy."""
    if uid not in telemetry.policies:
        telemetry.policies[uid] = PolicyCounts(_announced(stored), dict(stored.suppressed))


def record_policy(
    telemetry: Telemetry, uid: str, namespace: str, name: str, status: RollbackPolicyStatus
) -> None:
    """Count the breaches and suppressions in a saved `status` not counted yet; set the values.

    Ended episodes stay in the counted set (a few bytes per breach), so a round replayed from
    an older status after a failed one never counts a breach twice."""
    counted = telemetry.policies.setdefault(uid, PolicyCounts())
    for episode, severity in sorted(_announced(status) - counted.breaches):
        telemetry.breach(namespace, name, episode.split("@", 1)[0], severity)
        counted.breaches.add((episode, severity))
    for reason, total in sorted(status.suppressed.items()):
        more = total - counted.suppressed.get(reason, 0)
        if more > 0:
            telemetry.suppression(namespace, name, reason, more)
            counted.suppressed[reason] = total
    telemetry.rule_values(namespace, name, {r.name: r.value for r in status.rules})


def thresholds_stale(telemetry: Telemetry, uid: str, generation: int) -> bool:
    """Whether the threshold series must be set (first round here, or a new spec)."""
    counted = telemetry.policies.get(uid)
    return counted is None or counted.generation != generation


def set_thresholds(
    telemetry: Telemetry,
    uid: str,
    namespace: str,
    name: str,
    generation: int,
    rules: Sequence[Rule],
) -> None:
    """Publish the spec's thresholds and remember for which generation."""
    telemetry.thresholds(namespace, name, threshold_lines(rules))
    telemetry.policies.setdefault(uid, PolicyCounts()).generation = generation
