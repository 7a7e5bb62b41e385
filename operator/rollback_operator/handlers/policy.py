"""RollbackPolicy handlers: validation on every spec change, and evaluation of its rules.

Validation (the models, and `providers.endpoints`: credentials go only to official or allowed
endpoints) gives a policy `Ready` or `Stalled` with reason `InvalidSpec`, an Event, and its
`observedGeneration`. Evaluation is one daemon per policy that runs a round
(`reconcile.evaluation`) every `evaluationInterval`, with the metrics source built by the
factory on the memo. The daemon remembers the status it last saved and judges the next round
against it (the watch may not have delivered our own patch yet); after a restart it starts
from the status stored on the object, which holds every episode and rollback it recorded.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf
from pydantic import ValidationError

from rollback_operator.api import GROUP, VERSION
from rollback_operator.api.common import parse_duration
from rollback_operator.api.conditions import Condition, ConditionType, Reason, set_condition
from rollback_operator.api.policy import RollbackPolicy, RollbackPolicyStatus
from rollback_operator.api.validation import describe
from rollback_operator.handlers import history
from rollback_operator.handlers.deps import Deps
from rollback_operator.handlers.policy_live import LivePolicy
from rollback_operator.providers.base import MetricsSource
from rollback_operator.providers.endpoints import Endpoints
from rollback_operator.providers.errors import ProviderError
from rollback_operator.reconcile import evaluation, monitoring

logger = logging.getLogger(__name__)
RECHECK_SECONDS = 5.0
PLURAL = "rollbackpolicies"


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
        policy = RollbackPolicy.model_validate(dict(body))
        problem = Endpoints(tuple(deps.settings.allowed_endpoints)).policy_problem(policy)
    except ValidationError as error:
        problem = describe(error)
    if problem is not None:
        kopf.warn(body, reason="InvalidSpec", message=problem)
    patch.status["conditions"] = _conditions(body, problem, deps)
    patch.status["observedGeneration"] = int(body.metadata.get("generation") or 1)


async def evaluate_policy(
    *, body: kopf.Body, stopped: kopf.DaemonStopped, memo: Any, rollback_index: Any = None,
    **_: Any,
) -> None:  # fmt: skip
    """Evaluate the policy's rules every evaluationInterval until the policy goes away, and
    keep its history within historyLimit."""
    deps: Deps = memo
    memory: RollbackPolicyStatus | None = None
    while not stopped:
        started = time.monotonic()
        memory, interval = await evaluate_once(body, deps, rollback_index, memory)
        await history.prune(body, deps, rollback_index)
        await stopped.wait(max(0.0, interval - (time.monotonic() - started)))


async def evaluate_once(
    body: kopf.Body, deps: Deps, rollbacks: Any, memory: RollbackPolicyStatus | None
) -> tuple[RollbackPolicyStatus | None, float]:
    """One round; the status it saved and the seconds until the next one."""
    try:
        policy = RollbackPolicy.model_validate(dict(body))
    except ValidationError:
        return memory, RECHECK_SECONDS  # validate_policy reports it
    interval = parse_duration(policy.spec.evaluation_interval).total_seconds()
    if not policy.spec.rules or deps.metrics is None:
        return memory, interval
    if memory is not None:
        kept = memory.model_copy(update={"conditions": policy.status.conditions})
        policy = policy.model_copy(update={"status": kept})
    host = LivePolicy(body, deps, rollbacks)
    try:
        source = await _source(policy, deps)
        memory = await evaluation.evaluate(policy, source, host, deps.clock.now())
    except ProviderError as error:  # the Kubernetes API failed us: try again next round
        logger.warning("RollbackPolicy %s: evaluation failed: %s", policy.metadata.name, error)
    return memory, interval


async def _source(policy: RollbackPolicy, deps: Deps) -> MetricsSource:
    assert deps.metrics is not None
    try:
        return await deps.metrics.build(policy, deps.kube)
    except ProviderError as error:  # such as a missing auth Secret: every rule says so
        return monitoring.Unavailable(error)


def register(registry: kopf.OperatorRegistry, settle: float = 0.0) -> None:
    """Register the RollbackPolicy handlers; the evaluation reads the rollback index of
    `handlers.index` (`settle`: as in `handlers.rollback.register`)."""
    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(
            GROUP,
            VERSION,
            PLURAL,
            id="validate",
            registry=registry,
            field="spec",
        )(validate_policy)
    kopf.daemon(
        GROUP, VERSION, PLURAL, id="evaluate", registry=registry, cancellation_timeout=5.0,
        initial_delay=settle or None,
    )(evaluate_policy)  # fmt: skip
