"""How a rollback ended, judged from its step records alone (so a restart judges the same)."""

from __future__ import annotations

from rollback_operator.api.rollback import Phase, StepState, StepStatus
from rollback_operator.reconcile.steplist import TRAITS, VERIFY

ABORTED_MESSAGE = "skipped: the rollback was aborted before this step started"
AFTER_FAILURE_MESSAGE = "skipped: an earlier step failed"
NOT_FURTHER = "; not rolled back further"


def left_alone(target: str, by: str, to: str) -> str:
    """Why a step of `target` was skipped: a rollback of the same request went ahead."""
    return f"{target}: already rolled back by {by} to {to} while this rollback waited{NOT_FURTHER}"


def failed_critical(steps: list[StepStatus]) -> list[StepStatus]:
    """Critical steps that failed."""
    return [s for s in steps if TRAITS[s.name].critical and s.state == StepState.FAILED]


def was_aborted(steps: list[StepStatus]) -> bool:
    """Whether an abort skipped at least one step."""
    return any(s.state == StepState.SKIPPED and s.message == ABORTED_MESSAGE for s in steps)


def judge(steps: list[StepStatus]) -> Phase:
    """Succeeded, PartiallyFailed, Failed or Aborted."""
    if was_aborted(steps):
        return Phase.ABORTED
    failed = failed_critical(steps)
    if not failed:
        return Phase.SUCCEEDED
    changed = any(TRAITS[s.name].destructive and s.state == StepState.SUCCEEDED for s in steps)
    if changed or all(s.name == VERIFY for s in failed):
        return Phase.PARTIALLY_FAILED
    return Phase.FAILED


def summary(steps: list[StepStatus], phase: Phase) -> str:
    """One sentence for the final message."""
    done = [s for s in steps if TRAITS[s.name].destructive and s.state == StepState.SUCCEEDED]
    did = ", ".join(f"{s.name} ({s.target.value})" for s in done if s.target) or "nothing"
    left = _left_alone(steps)
    if phase == Phase.SUCCEEDED and left and not done:
        return f"Nothing to do: {left}"
    if phase == Phase.SUCCEEDED:
        return f"Rollback succeeded: {did}" + (f"; left alone: {left}" if left else "")
    failed = failed_critical(steps)
    why = "; ".join(f"{s.name}: {s.message}" for s in failed)
    if phase == Phase.ABORTED:
        return f"Aborted; already done: {did}"
    return f"{phase.value}: {why}; already done: {did}"


def _left_alone(steps: list[StepStatus]) -> str:
    """The targets a rollback ahead already rolled back, once each, in words."""
    notes = [
        s.message
        for s in steps
        if s.state == StepState.SKIPPED and s.message and s.message.endswith(NOT_FURTHER)
    ]
    return "; ".join(n.removesuffix(NOT_FURTHER) for n in dict.fromkeys(notes))
