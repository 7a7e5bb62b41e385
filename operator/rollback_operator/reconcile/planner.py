"""Make a rollback's plan: for each target, where it is now and where it will go.

Planning only reads. It is what a dry run shows and what the steps later execute, so a spec
edited after the start cannot change what runs. A rollback that waited behind others of its
targets is planned again at its turn; `plan_change` says whether that moved any destination
(which voids an approval given to the first plan). Targets another rollback of the same
request already rolled back are left out (`leave`), unless `spec.to` pins them.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from rollback_operator.api.common import Target, format_duration
from rollback_operator.api.policy import RollbackPolicySpec
from rollback_operator.api.restorepoint import PointPhase, RestorePoint
from rollback_operator.api.rollback import (
    DatabasePlan,
    DeploymentPlan,
    RollbackPlan,
    RollbackSpec,
    StoragePlan,
)
from rollback_operator.providers.base import VERSIONS_SOURCE, Providers
from rollback_operator.providers.errors import in_order


class PlanError(Exception):
    """The plan cannot be made from this spec and policy; the message names the field."""


def check_against_policy(spec: RollbackSpec, policy: RollbackPolicySpec) -> str | None:
    """Why `spec` cannot run under `policy`, or None when it can."""
    defined = policy.targets.defined()
    missing = [t.value for t in spec.chosen_targets() if t not in defined]
    if missing:
        return (
            f"spec.targets: {', '.join(missing)} not defined in the policy's spec.targets "
            f"(defined: {', '.join(t.value for t in defined) or 'none'})"
        )
    return None


async def make_plan(
    spec: RollbackSpec, providers: Providers, now: datetime, leave: Collection[Target] = ()
) -> RollbackPlan:
    """The plan for every chosen target but those to `leave` alone.

    The frontend, the backend and the data layers are read at the same time (a rollback's start
    waits for the slowest, not for their sum); an error is the first in the runbook's order,
    whichever read failed first, so the same failure always reads the same.
    """
    chosen = [t for t in spec.chosen_targets() if t not in leave]
    frontend, backend, (database, storage) = await in_order(
        _app(chosen, Target.FRONTEND, spec, providers),
        _app(chosen, Target.BACKEND, spec, providers),
        _data_layers(chosen, spec, providers, now),
    )
    return RollbackPlan(frontend=frontend, backend=backend, database=database, storage=storage)


async def _app(
    chosen: list[Target], target: Target, spec: RollbackSpec, providers: Providers
) -> DeploymentPlan | None:
    """Where the frontend or the backend is and where it goes; None when it is not chosen."""
    adapter = providers.frontend if target is Target.FRONTEND else providers.backend
    if target not in chosen or adapter is None:
        return None
    to = spec.to.frontend if target is Target.FRONTEND else spec.to.backend
    return await adapter.plan(to.deployment_id if to else None)


async def _data_layers(
    chosen: list[Target], spec: RollbackSpec, providers: Providers, now: datetime
) -> tuple[DatabasePlan | None, StoragePlan | None]:
    """The database's plan, then the storage's (whose moment defaults to the backup's)."""
    database: DatabasePlan | None = None
    point = restore_point(spec, providers)
    if Target.DATABASE in chosen:
        pin = _point_dump(point) if point else _database_pin(spec)
        database = await _database(pin, providers, now)
    if Target.STORAGE not in chosen or not providers.storage:
        return database, None
    if point:
        as_of, source = _point_moment(point)
        return database, await providers.storage.plan(as_of, source)
    as_of = await _storage_time(spec, database, providers, now)
    return database, await providers.storage.plan(as_of)


def destinations(plan: RollbackPlan | None) -> dict[str, str]:
    """Where `plan` leaves each target, in words: what a person approves. Readings that move
    with time or traffic (where a layer is now, the data-loss window, object counts) are out."""
    if plan is None:
        return {}
    found: dict[str, str] = {}
    for target, move in (("frontend", plan.frontend), ("backend", plan.backend)):
        if move is not None:
            found[target] = move.to if move.serving is not False else f"{move.to} (left stopped)"
    if plan.database is not None:
        dump = "" if plan.database.safety_backup else " (no safety dump)"
        found["database"] = f"backup {plan.database.backup}{dump}"
    if plan.storage is not None:
        source = plan.storage.source
        copy = f" from {source}" if source and source != VERSIONS_SOURCE else ""
        found["storage"] = f"as of {plan.storage.as_of.isoformat()}{copy}"
    return found


def plan_change(
    before: RollbackPlan | None, after: RollbackPlan, left: Collection[Target] = ()
) -> str | None:
    """The targets whose destination differs between two plans ("frontend: A -> B"), or None.
    Targets `left` alone by the later plan are no change: nothing is done to them."""
    was, now = destinations(before), destinations(after)
    moved = [
        f"{target}: {was.get(target, 'nothing')} -> {now.get(target, 'nothing')}"
        for target in (t.value for t in Target if t not in left)
        if was.get(target) != now.get(target)
    ]
    return "; ".join(moved) or None


def pinned(spec: RollbackSpec) -> set[Target]:
    """The targets whose destination `spec.to` names (a restore point names database and
    storage): explicit intent, acted on whatever other rollbacks did."""
    to = spec.to
    pins = {
        Target.FRONTEND: to.frontend,
        Target.BACKEND: to.backend,
        Target.DATABASE: to.database or to.restore_point,
        Target.STORAGE: to.storage or to.restore_point,
    }
    return {target for target, pin in pins.items() if pin is not None}


def restore_point(spec: RollbackSpec, providers: Providers) -> RestorePoint | None:
    """The RestorePoint `to.restorePoint` names, once it succeeded; None when none is named."""
    ref = spec.to.restore_point
    if ref is None:
        return None
    point = providers.restore_points.get(ref.name)
    if point is None or point.status.phase is not PointPhase.SUCCEEDED:
        phase = point.status.phase.value if point else "not found"
        raise PlanError(f"spec.to.restorePoint.name: RestorePoint {ref.name!r} is {phase}")
    return point


def _point_dump(point: RestorePoint) -> str:
    if point.status.database is None:
        raise PlanError(
            f"spec.to.restorePoint.name: RestorePoint {point.metadata.name!r} holds no database "
            "dump; leave database out of spec.targets"
        )
    return point.status.database.backup


def _point_moment(point: RestorePoint) -> tuple[datetime, str]:
    """The time and source (versions, or the copy folder) of a point's storage."""
    taken = point.status.storage
    if taken is None:
        raise PlanError(
            f"spec.to.restorePoint.name: RestorePoint {point.metadata.name!r} holds no storage "
            "point; leave storage out of spec.targets"
        )
    return taken.as_of, taken.copy_ or VERSIONS_SOURCE


def _database_pin(spec: RollbackSpec) -> str | None:
    return spec.to.database.backup if spec.to.database else None


async def _database(pin: str | None, providers: Providers, now: datetime) -> DatabasePlan:
    if providers.database is None:
        raise PlanError("spec.targets: database is not defined in the policy")
    chosen = await providers.database.plan(pin)
    if chosen.taken_at is not None:
        chosen.data_loss_window = format_duration(now - chosen.taken_at)
    return chosen


async def _storage_time(
    spec: RollbackSpec, database: DatabasePlan | None, providers: Providers, now: datetime
) -> datetime:
    if spec.to.storage is not None:
        if spec.to.storage.as_of > now:
            raise PlanError("spec.to.storage.asOf: is in the future")
        return spec.to.storage.as_of
    if database is None and providers.database is not None:
        database = await providers.database.plan(None)
    if database is None or database.taken_at is None:
        raise PlanError(
            "spec.to.storage.asOf: required when no database backup time can be used instead"
        )
    return database.taken_at
