"""RollbackPolicy validation: a policy says at once whether it is usable, and why not.

Metric evaluation and automatic rollbacks build on this; here a policy gets `Ready` or
`Stalled` with reason `InvalidSpec`, an Event, and its `observedGeneration`.
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from rollback_operator.api import GROUP, VERSION
from rollback_operator.api.conditions import Condition, ConditionType, Reason, set_condition
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.validation import describe
from rollback_operator.handlers.deps import Deps


def _conditions(body: kopf.Body, problem: str | None, deps: Deps) -> list[dict[str, Any]]:
    existing = [Condition.model_validate(c) for c in body.get("status", {}).get("conditions", [])]
    generation = int(body.metadata.get("generation") or 1)
    now = deps.clock.now()
    ok = problem is None
    reason = Reason.VALID if ok else Reason.INVALID_SPEC
    message = "Policy is valid" if ok else problem or ""
    for type_, value in (
        (ConditionType.READY, ok),
        (ConditionType.STALLED, not ok),
        (ConditionType.RECONCILING, False),
    ):
        existing = set_condition(
            existing, type_, value, reason, message, now=now, generation=generation
        )
    return [c.wire() for c in existing]


def validate_policy(*, body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
    """Check the spec with the models; record Ready or Stalled(InvalidSpec) and an Event."""
    deps: Deps = memo
    try:
        RollbackPolicy.model_validate(dict(body))
        problem = None
    except ValidationError as error:
        problem = describe(error)
        kopf.warn(body, reason="InvalidSpec", message=problem)
    patch.status["conditions"] = _conditions(body, problem, deps)
    patch.status["observedGeneration"] = int(body.metadata.get("generation") or 1)


def register(registry: kopf.OperatorRegistry) -> None:
    """Register the RollbackPolicy handlers."""
    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(
            GROUP,
            VERSION,
            "rollbackpolicies",
            id="validate",
            registry=registry,
            field="spec",
        )(validate_policy)
