"""Traffic a full rollback stopped: which layers are still dark, the steps that give it back,
and the `TrafficStopped` condition that says so.

Why this module exists: stop-traffic comes early in a full rollback and deploy-previous gives
traffic back late, so a failure or an abort in between would leave production dark. Which
layers the rollback stopped and has not given back is judged from the step records alone, so a
restarted operator judges the same. `resume-traffic` steps give it back: at once when the
policy's `failurePolicy.traffic` is `resume`, else once someone sets the annotation
`rollback.mindmate.app/resume-traffic: "true"` (`kubectl rollback resume-traffic NAME`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rollback_operator.api import RESUME_TRAFFIC_ANNOTATION
from rollback_operator.api.common import Target
from rollback_operator.api.conditions import ConditionType, Reason, find
from rollback_operator.api.rollback import (
    RollbackStatus,
    StepState,
    StepStatus,
)
from rollback_operator.reconcile import transitions
from rollback_operator.reconcile.steplist import (
    DEPLOY_PREVIOUS,
    REPORT,
    RESUME_TRAFFIC,
    STOP_TRAFFIC,
)

GIVE_BACK = (DEPLOY_PREVIOUS, RESUME_TRAFFIC)
"""The steps that serve traffic again on a layer (deploy-previous resumes after it moved)."""


def stopped(status: RollbackStatus) -> list[Target]:
    """Layers whose traffic this rollback stopped (or may have: a stop that was tried) and has
    not given back; a layer that served no traffic when planned was never stopped by it."""
    given_back = {s.target for s in status.steps if s.name in GIVE_BACK and _done(s)}
    return [t for t in _stopped_by_rollback(status) if t not in given_back]


def resume_hint(namespace: str, name: str) -> str:
    """How a person resumes traffic, in one command."""
    return (
        f"kubectl rollback resume-traffic {name} -n {namespace} "
        f'(sets the annotation {RESUME_TRAFFIC_ANNOTATION}: "true")'
    )


def add_resume_steps(status: RollbackStatus, layers: list[Target], *, retry: bool) -> bool:
    """Add a `resume-traffic` step for each of `layers` that has none (with `retry`: none that
    is still to run), before the report when it is still to run; True if any was added."""
    open_or_any = [
        s.target
        for s in status.steps
        if s.name == RESUME_TRAFFIC and (not retry or s.state in _OPEN)
    ]
    new = [StepStatus(name=RESUME_TRAFFIC, target=t) for t in layers if t not in open_or_any]
    report = next(
        (i for i, s in enumerate(status.steps) if s.name == REPORT and s.state in _OPEN), None
    )
    at = len(status.steps) if report is None else report
    status.steps[at:at] = new
    return bool(new)


def requested(annotations: Mapping[str, str]) -> bool:
    """Whether the resume-traffic annotation asks for it."""
    return annotations.get(RESUME_TRAFFIC_ANNOTATION, "").strip().lower() in {"true", "yes", "1"}


def held(status: RollbackStatus) -> bool:
    """Whether the recorded condition says traffic this rollback stopped is still stopped."""
    found = find(status.conditions, ConditionType.TRAFFIC_STOPPED)
    return found is not None and found.status == "True"


def mark(
    status: RollbackStatus,
    namespace: str,
    name: str,
    *,
    ended: bool,
    now: datetime,
    generation: int,
) -> None:
    """Set `TrafficStopped` from the step records (a rollback that never stopped traffic has
    none): True while traffic it stopped is still stopped, naming each layer and, once the
    rollback `ended`, how to resume; False, reason Resumed, once every layer serves again."""
    layers, held = stopped(status), find(status.conditions, ConditionType.TRAFFIC_STOPPED)
    if not layers and held is None:
        return
    hint = resume_hint(namespace, name)
    value, reason, message = _condition(status, layers, hint, ended=ended)
    transitions.mark(
        status, ConditionType.TRAFFIC_STOPPED, value, reason, message,
        now=now, generation=generation,
    )  # fmt: skip


def _condition(
    status: RollbackStatus, layers: list[Target], hint: str, *, ended: bool
) -> tuple[bool, Reason, str]:
    named = ", ".join(t.value for t in layers)
    if not layers:
        back = [
            f"{s.target.value} ({s.name})"
            for s in status.steps
            if s.target and s.name in GIVE_BACK and _done(s)
        ]
        return False, Reason.RESUMED, f"Traffic serves again: {', '.join(back)}"
    if not ended:
        return True, Reason.STOPPED_FOR_ROLLBACK, (
            f"Traffic stopped by this rollback: {named}; deploy-previous gives it back, or, if "
            "the rollback fails or is aborted first, as the policy's failurePolicy.traffic says"
        )  # fmt: skip
    failed = [s for s in status.steps if s.name == RESUME_TRAFFIC and s.state == StepState.FAILED]
    reason = Reason.RESUME_FAILED if failed else Reason.KEPT_STOPPED
    why = f" (resume-traffic failed: {failed[-1].message})" if failed else ""
    return True, reason, (
        f"Traffic this rollback stopped is still stopped: {named}{why}. To serve again, each "
        f"on the version it runs now (never its latest source): {hint}"
    )  # fmt: skip


def _stopped_by_rollback(status: RollbackStatus) -> list[Target]:
    plan = status.plan

    def served(target: Target) -> bool:
        move = getattr(plan, target.value) if plan else None
        return move is None or move.serving is not False

    return [
        s.target
        for s in status.steps
        if s.name == STOP_TRAFFIC and s.target and _tried(s) and served(s.target)
    ]


def _tried(step: StepStatus) -> bool:
    return step.state in (StepState.SUCCEEDED, StepState.RUNNING) or (
        step.state == StepState.FAILED and step.attempts > 0
    )


def _done(step: StepStatus) -> bool:
    return step.state == StepState.SUCCEEDED


_OPEN = (StepState.PENDING, StepState.RUNNING)
