"""A policy's `restorePoints`: RestorePoints created on its cron schedule, and `keep` applied.

One daemon per policy that has a schedule. Each round it asks `reconcile.schedule` whether a
slot is due (from the clock and the points in the index, so a restart neither repeats nor
loses a slot), creates that slot's RestorePoint, labelled as the schedule's, and lets go of
the scheduled points `keep` no longer keeps: first the objects each one wrote (its dump and
its copy folder, through the providers, which delete only what that point's key wrote), then
the RestorePoint itself, only while it is still the object that was judged (uid precondition).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from rollback_operator.api import API_VERSION, GROUP, POLICY_LABEL, TRIGGER_LABEL, VERSION
from rollback_operator.api.common import Target
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.restorepoint import SCHEDULE_TRIGGER, RestorePoint
from rollback_operator.handlers.deps import Deps
from rollback_operator.providers.base import Providers
from rollback_operator.providers.errors import ProviderError
from rollback_operator.reconcile import points, schedule

logger = logging.getLogger(__name__)
PLURAL = "restorepoints"
LONGEST_WAIT = 30.0  # seconds between rounds at most: points that ended are let go soon
RECHECK_SECONDS = 5.0


async def run_schedule(
    *, body: kopf.Body, stopped: kopf.DaemonStopped, memo: Any, restorepoint_index: Any = None,
    **_: Any,
) -> None:  # fmt: skip
    """Create the policy's scheduled RestorePoints and apply `keep`, until it goes away."""
    deps: Deps = memo
    while not stopped:
        await stopped.wait(await schedule_once(body, deps, restorepoint_index))


async def schedule_once(body: kopf.Body, deps: Deps, index: Any) -> float:
    """One round; the seconds until the next."""
    try:
        policy = RollbackPolicy.model_validate(dict(body))
    except ValidationError:
        return RECHECK_SECONDS  # the policy's validation reports it
    config = policy.spec.restore_points
    if config is None:
        return RECHECK_SECONDS
    now = deps.clock.now()
    mine = schedule.scheduled(_points(index, policy.metadata.namespace), policy.metadata.name)
    slot = schedule.due(config.schedule, now, _created(policy), mine)
    try:
        if slot is not None:
            await _create(body, deps, policy, f"{config.schedule} UTC", slot)
        gone = schedule.expired(mine, config.keep, now)
        if gone:
            await _let_go(body, deps, policy, gone)
    except ProviderError as error:  # tried again next round
        logger.warning("RollbackPolicy %s: restore points: %s", policy.metadata.name, error)
    until = (schedule.next_slot(config.schedule, now) - now).total_seconds()
    return max(0.5, min(LONGEST_WAIT, until))


def _points(index: Any, namespace: str) -> list[RestorePoint]:
    if index is None:
        return []
    return [p for key, found in index.items() if key[0] == namespace for p in found]


def _created(policy: RollbackPolicy) -> datetime:
    stamp = policy.metadata.creation_timestamp or "1970-01-01T00:00:00Z"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def _create(
    body: kopf.Body, deps: Deps, policy: RollbackPolicy, cron: str, slot: datetime
) -> None:
    name = schedule.point_name(policy.metadata.name, slot)
    manifest = {
        "apiVersion": API_VERSION,
        "kind": "RestorePoint",
        "metadata": {
            "name": name,
            "labels": {TRIGGER_LABEL: SCHEDULE_TRIGGER, POLICY_LABEL: policy.metadata.name},
        },
        "spec": {
            "policyRef": {"name": policy.metadata.name},
            "reason": f"scheduled ({cron}) for {slot.isoformat()}",
        },
    }
    await deps.kube.create(PLURAL, policy.metadata.namespace, manifest)
    kopf.event(body, type="Normal", reason="RestorePointScheduled", message=f"Created {name}")


async def _let_go(
    body: kopf.Body, deps: Deps, policy: RollbackPolicy, gone: list[RestorePoint]
) -> None:
    providers = await deps.providers.build(policy, deps.kube)
    for point in gone:
        dropped = await _drop_objects(point, providers)
        meta = point.metadata
        await deps.kube.delete(PLURAL, meta.namespace, meta.name, meta.uid)
        message = f"Deleted {meta.name} (keep) and what it wrote: {dropped}"
        kopf.event(body, type="Normal", reason="RestorePointDeleted", message=message)


async def _drop_objects(point: RestorePoint, providers: Providers) -> str:
    """Delete the dump and the copy folder `point` wrote, if any; what was deleted."""
    said = []
    if providers.database is not None:
        key = points.point_key(point, Target.DATABASE)
        if await providers.database.drop_point(point.metadata.name, key):
            said.append("its database dump")
    started = point.status.started_at
    if providers.storage is not None and started is not None:
        key = points.point_key(point, Target.STORAGE)
        copied = await providers.storage.drop_snapshot(started, point.metadata.name, key)
        said += [f"{copied} copied files"] if copied else []
    return ", ".join(said) or "nothing"


def register(registry: kopf.OperatorRegistry, settle: float = 0.0) -> None:
    """Register the schedule daemon of policies with `restorePoints` (it reads the point
    index of `handlers.restorepoint`)."""
    kopf.daemon(
        GROUP, VERSION, "rollbackpolicies", id="restore-points", registry=registry,
        cancellation_timeout=5.0, initial_delay=settle or None,
        when=lambda spec, **_: bool(spec.get("restorePoints")),
    )(run_schedule)  # fmt: skip
