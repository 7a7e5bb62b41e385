"""The operator's two kopf indexes: RollbackPolicies by name, and Rollbacks by their policy.

A Rollback is read once here, into the one typed entry (`queue.RollbackEntry`) that both the
queue (who may run now) and its policy's evaluation (is a rollback of these targets active,
was this breach already rolled back) use, so neither parses a body again.
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from rollback_operator.api import GROUP, TRIGGER_LABEL, VERSION
from rollback_operator.api.conditions import ConditionType
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import Phase, Rollback
from rollback_operator.api.validation import describe
from rollback_operator.reconcile.automatic import EPISODES_ANNOTATION
from rollback_operator.reconcile.queue import RollbackEntry, moved

POLICIES = "policy_index"
"""Handlers get the policy index as this keyword: (namespace, name) -> policy, or why invalid."""
ROLLBACKS = "rollback_index"
"""Handlers get the rollback index as this keyword: (namespace, policy name) -> entries."""


async def index_policies(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    """Index every RollbackPolicy by (namespace, name), parsed, or the reason it is invalid."""
    try:
        return {(namespace, name): RollbackPolicy.model_validate(dict(body))}
    except ValidationError as error:
        return {(namespace, name): describe(error)}


async def index_rollbacks(
    *, body: kopf.Body, namespace: str | None, spec: kopf.Spec, **_: Any
) -> Any:
    """Index every Rollback by (namespace, policy name) as a `RollbackEntry`."""
    policy = (spec.get("policyRef") or {}).get("name", "")
    return {(namespace, policy): rollback_entry(body)}


def rollback_entry(body: kopf.Body) -> RollbackEntry:
    """A Rollback body as the queue and its policy see it."""
    status, spec = body.get("status", {}), body.get("spec", {})
    is_auto = body.metadata.labels.get(TRIGGER_LABEL) == "policy"
    listed = body.metadata.annotations.get(EPISODES_ANNOTATION, "") if is_auto else ""
    phase = Phase(status.get("phase", Phase.PENDING.value))
    return RollbackEntry(
        uid=body.metadata.uid or "",
        name=body.metadata.name or "",
        created=body.metadata.get("creationTimestamp") or "",
        phase=phase,
        targets=frozenset(status.get("targets") or spec.get("targets") or _defaults(body)),
        episodes=frozenset(e for e in listed.split(",") if e),
        automatic=is_auto,
        traffic_stopped=any(
            c.get("type") == ConditionType.TRAFFIC_STOPPED and c.get("status") == "True"
            for c in status.get("conditions") or []
        ),
        finished=status.get("finishedAt") or "",
        rolled_back=moved(phase, status),
    )


def _defaults(body: kopf.Body) -> list[str]:
    """The targets of a Rollback that names none; none at all while its spec is invalid (it
    stays Pending and acts on nothing until it is fixed)."""
    try:
        spec = Rollback.model_validate(dict(body)).spec
    except ValidationError:
        return []
    return [t.value for t in spec.chosen_targets()]


def register(registry: kopf.OperatorRegistry) -> None:
    """Register both indexes."""
    kopf.index(GROUP, VERSION, "rollbackpolicies", id=POLICIES, registry=registry)(index_policies)
    kopf.index(GROUP, VERSION, "rollbacks", id=ROLLBACKS, registry=registry)(index_rollbacks)
