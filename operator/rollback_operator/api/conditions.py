"""Condition types, reasons and the one function that changes a conditions list.

Conditions follow the Kubernetes API conventions (metav1.Condition) and kstatus, so that
`kubectl wait --for=condition=Ready` works and tools see `Reconciling` / `Stalled`.
Every type and reason the operator writes is declared here, once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from rollback_operator.api.common import Model


class ConditionType(StrEnum):
    """Every condition type either resource publishes."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    PLANNED = "Planned"
    APPROVED = "Approved"
    VERIFIED = "Verified"
    SPEC_CHANGE_REFUSED = "SpecChangeRefused"
    TRAFFIC_STOPPED = "TrafficStopped"
    BREACHING = "Breaching"


class ReasonWord(StrEnum):
    """What a condition may give as its reason: a `Reason`, or a phase (`Phase`, `PointPhase`
    derive from this class), since the summary conditions (Ready, Reconciling, Stalled) give
    their phase as their reason; a phase's word is declared once, with the phase."""


class Reason(ReasonWord):
    """Machine-readable reasons (one CamelCase word each), besides the phases."""

    INVALID_SPEC = "InvalidSpec"
    PLANNED = "Planned"
    PLAN_FAILED = "PlanFailed"
    PLAN_WAITING = "PlanWaiting"
    REPLANNED = "Replanned"
    PLAN_CHANGED = "PlanChanged"
    ALREADY_ROLLED_BACK = "AlreadyRolledBack"
    DRY_RUN = "DryRun"
    AWAITING_APPROVAL = "AwaitingApproval"
    APPROVED = "Approved"
    SELF_APPROVAL = "SelfApproval"
    NOT_REQUIRED = "NotRequired"
    CHECKS_PASSED = "ChecksPassed"
    CHECKS_FAILED = "ChecksFailed"
    NO_CHECKS = "NoChecks"
    SPEC_IMMUTABLE = "SpecImmutable"
    STOPPED_FOR_ROLLBACK = "StoppedForRollback"
    KEPT_STOPPED = "KeptStopped"
    RESUME_FAILED = "ResumeFailed"
    RESUMED = "Resumed"
    VALID = "Valid"
    RULES_BREACHING = "RulesBreaching"
    RULES_CLEAR = "RulesClear"
    EVALUATING = "Evaluating"
    METRICS_UNREACHABLE = "MetricsUnreachable"
    QUERY_FAILED = "QueryFailed"
    RULE_WARNING = "RuleWarning"
    RULE_CRITICAL = "RuleCritical"
    AUTOMATIC_ROLLBACK = "AutomaticRollback"
    SUSPENDED = "Suspended"
    COOLDOWN = "Cooldown"
    MAX_ROLLBACKS = "MaxRollbacks"
    ROLLBACK_ACTIVE = "RollbackActive"
    ROLLBACK_REFUSED = "RollbackRefused"


Status = Literal["True", "False", "Unknown"]


class Condition(Model):
    """One observation about the resource, as in metav1.Condition."""

    type: str = Field(description="Condition type, such as Ready or Stalled.")
    status: Status = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word a program can match on.")
    message: str = Field(default="", description="What a person should know.")
    last_transition_time: datetime = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition reflects."
    )


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: bool | None,
    reason: ReasonWord,
    message: str,
    *,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Return `conditions` with `type_` set; keep lastTransitionTime if the status holds."""
    text: Status = "Unknown" if status is None else ("True" if status else "False")
    previous = find(conditions, type_)
    since = previous.last_transition_time if previous and previous.status == text else now
    new = Condition(
        type=type_.value,
        status=text,
        reason=reason.value,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    rest = [c for c in conditions if c.type != type_.value]
    return [*rest, new]


def find(conditions: list[Condition], type_: ConditionType) -> Condition | None:
    """The condition of this type, if present."""
    return next((c for c in conditions if c.type == type_.value), None)
