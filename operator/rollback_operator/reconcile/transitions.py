"""Phase changes of a Rollback and the conditions that go with each, in one table.

A phase is a printer column; conditions are what tools read: `Ready` (the summary),
`Reconciling` and `Stalled` (kstatus), so `kubectl wait --for=condition=Ready` works and a
failure is visible at once as `Stalled`.
"""

from __future__ import annotations

from datetime import datetime

from rollback_operator.api.conditions import (
    ConditionType,
    Reason,
    ReasonWord,
    find,
    set_condition,
)
from rollback_operator.api.rollback import Phase, RollbackStatus

# phase -> (Ready, Reconciling, Stalled)
_TABLE: dict[Phase, tuple[bool, bool, bool]] = {
    Phase.PENDING: (False, True, False),
    Phase.PLANNING: (False, True, False),
    Phase.PLANNED: (True, False, False),
    Phase.AWAITING_APPROVAL: (False, True, False),
    Phase.QUEUED: (False, True, False),
    Phase.RUNNING: (False, True, False),
    Phase.VERIFYING: (False, True, False),
    Phase.SUCCEEDED: (True, False, False),
    Phase.PARTIALLY_FAILED: (False, False, True),
    Phase.FAILED: (False, False, True),
    Phase.ABORTED: (False, False, True),
}
# the summary's reason where it is not the phase itself
_REASONS: dict[Phase, ReasonWord] = {Phase.PENDING: Phase.PLANNING, Phase.PLANNED: Reason.DRY_RUN}


def enter(
    status: RollbackStatus,
    phase: Phase,
    message: str,
    *,
    now: datetime,
    generation: int,
    reason: Reason | None = None,
) -> bool:
    """Move to `phase` and set Ready/Reconciling/Stalled; False if nothing changed."""
    changed = status.phase != phase or status.message != message
    status.phase = phase
    summary = reason or _REASONS.get(phase, phase)
    _summarise(status, _TABLE[phase], summary, message, now, generation)
    return changed


def mark(
    status: RollbackStatus,
    type_: ConditionType,
    value: bool | None,
    reason: ReasonWord,
    message: str,
    *,
    now: datetime,
    generation: int,
) -> None:
    """Set one of the detail conditions (Planned, Approved, Verified, SpecChangeRefused)."""
    status.conditions = set_condition(
        status.conditions, type_, value, reason, message, now=now, generation=generation
    )


def invalid(status: RollbackStatus, message: str, *, now: datetime, generation: int) -> None:
    """Bad input: Stalled with reason InvalidSpec; the phase stays what it was.

    A rollback that has been planned never goes back to Pending: from Pending the engine plans
    afresh, and an accepted plan in Pending would skip approval and the queue once fixed.
    """
    status.phase = status.phase or Phase.PENDING
    _summarise(status, (False, False, True), Reason.INVALID_SPEC, message, now, generation)


def is_invalid(status: RollbackStatus) -> bool:
    """Whether the summary still says the input is bad (Stalled, reason InvalidSpec)."""
    stalled = find(status.conditions, ConditionType.STALLED)
    if stalled is None or stalled.status != "True":
        return False
    return stalled.reason == Reason.INVALID_SPEC.value


def input_fixed(status: RollbackStatus, *, now: datetime, generation: int) -> bool:
    """The input is good again: the phase's own summary and message back; False if it was."""
    if not is_invalid(status) or status.phase not in _RESUMED:
        return False
    enter(status, status.phase, _RESUMED[status.phase], now=now, generation=generation)
    return True


def _summarise(
    status: RollbackStatus,
    values: tuple[bool, bool, bool],
    reason: ReasonWord,
    message: str,
    now: datetime,
    generation: int,
) -> None:
    """The message and the summary conditions: Ready, Reconciling and Stalled, in that order."""
    status.message = message
    status.observed_generation = generation
    for type_, value in zip(_SUMMARY, values, strict=True):
        mark(status, type_, value, reason, message, now=now, generation=generation)


_SUMMARY = (ConditionType.READY, ConditionType.RECONCILING, ConditionType.STALLED)

# the message a planned phase shows again once bad input is fixed
_RESUMED: dict[Phase, str] = {
    Phase.AWAITING_APPROVAL: (
        "Input fixed; waiting for the annotation rollback.mindmate.app/approved-by"
    ),
    Phase.QUEUED: "Input fixed; waiting for other rollbacks of these targets",
    Phase.RUNNING: "Input fixed; running the plan's steps",
    Phase.VERIFYING: "Input fixed; verifying the rollback",
}
