"""RestorePoint handlers: the index Rollbacks find points in, and the daemon that takes them.

One daemon per RestorePoint that has not ended: it validates the body, finds the policy in the
policy index, builds the policy's providers and hands over to `reconcile.points.take`. Bad
input (a missing or invalid policy, a layer the policy lacks) is `Stalled`/`InvalidSpec` with
an Event naming the field, the phase stays `Pending`, and the daemon looks again every few
seconds. The metrics of each policy's last restore point come from `handlers.watch`.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import kopf
from pydantic import ValidationError

from rollback_operator.api import GROUP, VERSION
from rollback_operator.api.common import Target
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.restorepoint import (
    TERMINAL_POINT_PHASES,
    PointPhase,
    RestorePoint,
    RestorePointStatus,
)
from rollback_operator.api.rollback import Rollback
from rollback_operator.api.validation import describe
from rollback_operator.handlers import references
from rollback_operator.handlers.deps import Deps
from rollback_operator.handlers.patching import StatusPatches
from rollback_operator.providers.base import Providers
from rollback_operator.reconcile import points
from rollback_operator.reconcile.ports import Stopping

logger = logging.getLogger(__name__)
PLURAL = "restorepoints"
POINTS = "restorepoint_index"
"""Handlers get the point index as this keyword: (namespace, name) -> parsed point."""
RECHECK_SECONDS = 5.0
Prepared = tuple[RestorePoint, list[Target], Providers]


async def index_points(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    """Index every valid RestorePoint by (namespace, name)."""
    try:
        return {(namespace, name): RestorePoint.model_validate(dict(body))}
    except ValidationError:
        return {}  # refused at admission; nothing a rollback could use


def resolve(rollback: Rollback, index: Any) -> dict[str, RestorePoint] | str:
    """The RestorePoint a Rollback's `to.restorePoint` names, by name, once it can be used;
    else why not (it waits: a point still being taken, or applied later, unsticks it)."""
    ref = rollback.spec.to.restore_point
    if ref is None:
        return {}
    namespace, field = rollback.metadata.namespace, "spec.to.restorePoint.name"
    found = list(index.get((namespace, ref.name), [])) if index is not None else []
    if not found:
        return f"{field}: RestorePoint {ref.name!r} not found in namespace {namespace!r}"
    point: RestorePoint = found[0]
    policy = rollback.spec.policy_ref.name
    if point.spec.policy_ref.name != policy:
        return (
            f"{field}: RestorePoint {ref.name!r} was taken under RollbackPolicy "
            f"{point.spec.policy_ref.name!r}, not {policy!r}"
        )
    if point.status.phase is not PointPhase.SUCCEEDED:
        said = f": {point.status.message}" if point.status.message else ""
        return f"{field}: RestorePoint {ref.name!r} is {point.status.phase.value}{said}"
    return {ref.name: point}


def attach(rollback: Rollback, providers: Providers, index: Any) -> str | None:
    """Hand the point `to.restorePoint` names to the planner through `providers`; None when
    done, else why it cannot be used yet."""
    found = resolve(rollback, index)
    if isinstance(found, str):
        return found
    providers.restore_points = found
    return None


def _ended(body: kopf.Body) -> bool:
    return body.get("status", {}).get("phase") in {p.value for p in TERMINAL_POINT_PHASES}


class LivePoint:
    """The record of one RestorePoint: status patches, Events, waits (`points.PointHost`)."""

    def __init__(self, body: kopf.Body, stopped: kopf.DaemonStopped, deps: Deps) -> None:
        self.body, self.stopped, self.deps = body, stopped, deps
        namespace, name = body.metadata.namespace or "", body.metadata.name or ""
        saved = dict(body.get("status", {}))
        self._status = StatusPatches(deps.kube, PLURAL, namespace, name, saved)

    async def save(self, status: RestorePointStatus) -> None:
        await self._status.write(status.wire())

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        logger.log(logging.WARNING if warning else logging.INFO, "%s: %s", reason, message)
        kind = "Warning" if warning else "Normal"
        kopf.event(self.body, type=kind, reason=reason, message=message)

    async def pause(self, seconds: float) -> bool:
        await self.stopped.wait(seconds)
        return bool(self.stopped)


async def _prepare(body: kopf.Body, policies: Any, deps: Deps) -> Prepared | str:
    """The parsed point, the layers it takes and the policy's providers; or why not."""
    try:
        point = RestorePoint.model_validate(dict(body))
    except ValidationError as error:
        return describe(error)
    namespace, ref = point.metadata.namespace, point.spec.policy_ref.name
    check = partial(_layers_problem, point)
    resolved = await references.resolve(policies, namespace, ref, deps, check)
    if isinstance(resolved, str):
        return resolved
    policy, providers = resolved
    return point, point.spec.chosen_targets(policy.spec.targets.defined()), providers


def _layers_problem(point: RestorePoint, policy: RollbackPolicy) -> str | None:
    defined = policy.spec.targets.defined()
    missing = [t for t in point.spec.targets or [] if Target(t) not in defined]
    if missing:
        return (
            f"spec.targets: {', '.join(missing)} not defined in RollbackPolicy "
            f"{policy.metadata.name!r}'s spec.targets"
        )
    if not point.spec.chosen_targets(defined):
        return (
            f"spec.policyRef.name: RollbackPolicy {policy.metadata.name!r} has no database or "
            "storage target to take"
        )
    return None


async def take_point(
    *, body: kopf.Body, stopped: kopf.DaemonStopped, memo: Any, policy_index: Any = None,
    **_: Any,
) -> None:  # fmt: skip
    """Take one RestorePoint, or wait while its input is bad."""
    deps: Deps = memo
    while not stopped and not _ended(body):
        live = LivePoint(body, stopped, deps)
        prepared = await _prepare(body, policy_index, deps)
        if isinstance(prepared, str):
            await _invalid(body, live, prepared, deps)
            await stopped.wait(RECHECK_SECONDS)
            continue
        point, targets, providers = prepared
        try:
            status = await points.take(
                point, targets, providers, live, clock=deps.clock, retry=deps.retry
            )
        except Stopping:
            return
        logger.info("RestorePoint %s ended in %s", point.metadata.name, status.phase.value)
        return


async def _invalid(body: kopf.Body, live: LivePoint, message: str, deps: Deps) -> None:
    """Record bad input once: Stalled, reason InvalidSpec, and a Warning Event."""
    status = RestorePointStatus.model_validate(body.get("status", {}))
    generation = int(body.metadata.get("generation") or 1)
    if points.invalid(status, message, generation, deps.clock.now()):
        await live.save(status)
        await live.event(warning=True, reason="InvalidSpec", message=message)


def register(registry: kopf.OperatorRegistry, settle: float = 0.0) -> None:
    """Register the point index and the daemon (it reads the policy index)."""
    kopf.index(GROUP, VERSION, PLURAL, id=POINTS, registry=registry)(index_points)
    kopf.daemon(
        GROUP, VERSION, PLURAL, id="take", registry=registry, cancellation_timeout=10.0,
        initial_delay=settle or None, when=lambda body, **_: not _ended(body),
    )(take_point)  # fmt: skip
