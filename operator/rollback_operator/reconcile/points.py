"""Take a restore point: the database dump and the storage moment together, recorded.

A function of the recorded status, like a rollback's engine: the moment is chosen once
(`startedAt`, saved before any provider call) and both layers are taken at it, side by side,
so the dump and the files describe one time. Each provider call looks before it acts (the
dump of this point's key already there is reused; a dated copy is made again into the same
folder), so a point interrupted by a restart is taken again from its start with one effect.
Transient errors are retried with the rollback steps' backoff; anything else fails the point
with the provider's reason, which names the field to fix.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from rollback_operator.api.common import Target
from rollback_operator.api.conditions import ConditionType, Reason, set_condition
from rollback_operator.api.restorepoint import (
    DatabasePoint,
    PointPhase,
    RestorePoint,
    RestorePointStatus,
    StoragePointStatus,
)
from rollback_operator.providers.base import PointCopy, PointDump, Providers
from rollback_operator.providers.errors import ProviderError, RetryableError, first_provider_error
from rollback_operator.reconcile.ports import Clock, Stopping
from rollback_operator.reconcile.runner import RetryPolicy


class PointHost(Protocol):
    """Where a restore point's record goes, and how it waits."""

    async def save(self, status: RestorePointStatus) -> None:
        """Persist the status; returns once the API server has it."""
        ...

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        """Post a Kubernetes Event about the point."""
        ...

    async def pause(self, seconds: float) -> bool:
        """Wait; True when the operator is stopping."""
        ...


def point_key(point: RestorePoint, target: Target) -> str:
    """The idempotency key of one layer of a point: `<uid>/restore-point/<target>`."""
    return f"{point.metadata.uid}/restore-point/{target.value}"


async def take(
    point: RestorePoint,
    targets: list[Target],
    providers: Providers,
    host: PointHost,
    *,
    clock: Clock,
    retry: RetryPolicy,
) -> RestorePointStatus:
    """Take `targets` of `point` and record the outcome; the final status."""
    status = point.status.model_copy(deep=True)
    if status.phase is not PointPhase.RUNNING or status.started_at is None:
        status.started_at, status.targets = clock.now(), targets
        _enter(status, PointPhase.RUNNING, "Taking the restore point", point, clock.now())
        await host.save(status)
        await host.event(warning=False, reason="Taking", message=_what(targets))
    try:
        dump, copy = await _with_retries(point, targets, providers, status.started_at, host, retry)
    except ProviderError as error:
        _enter(status, PointPhase.FAILED, str(error), point, clock.now())
        await host.save(status)
        await host.event(warning=True, reason=PointPhase.FAILED.value, message=str(error))
        return status
    _record(status, dump, copy)
    _enter(status, PointPhase.SUCCEEDED, _summary(status), point, clock.now())
    await host.save(status)
    await host.event(warning=False, reason=PointPhase.SUCCEEDED.value, message=_summary(status))
    return status


async def _with_retries(
    point: RestorePoint, targets: list[Target], providers: Providers, at: datetime,
    host: PointHost, retry: RetryPolicy,
) -> tuple[PointDump | None, PointCopy | None]:  # fmt: skip
    attempt = 0
    while True:
        attempt += 1
        try:
            return await _both(point, targets, providers, at)
        except BaseExceptionGroup as group:
            error = first_provider_error(group)
            if error is None:  # not the provider's: it goes on up
                raise
        if not isinstance(error, RetryableError) or attempt >= retry.max_attempts:
            raise error
        if await host.pause(retry.delay(attempt, error.retry_after)):
            raise Stopping


async def _both(
    point: RestorePoint, targets: list[Target], providers: Providers, at: datetime
) -> tuple[PointDump | None, PointCopy | None]:
    """Both layers at once: the dump and the copy start together."""
    async with asyncio.TaskGroup() as group:
        dump = copy = None
        if Target.DATABASE in targets and providers.database is not None:
            name, key = point.metadata.name, point_key(point, Target.DATABASE)
            dump = group.create_task(providers.database.dump_point(name, key))
        if Target.STORAGE in targets and providers.storage is not None:
            name, key = point.metadata.name, point_key(point, Target.STORAGE)
            copy = group.create_task(providers.storage.snapshot(at, name, key))
    return (dump.result() if dump else None), (copy.result() if copy else None)


def _record(status: RestorePointStatus, dump: PointDump | None, copy: PointCopy | None) -> None:
    if dump is not None:
        status.database = DatabasePoint(backup=dump.backup, size=dump.size, taken_at=dump.taken_at)
    if copy is not None:
        status.storage = StoragePointStatus(as_of=copy.as_of, copy_=copy.copy, objects=copy.objects)


def _enter(
    status: RestorePointStatus, phase: PointPhase, message: str, point: RestorePoint,
    now: datetime,
) -> None:  # fmt: skip
    status.phase, status.message = phase, message
    status.observed_generation = point.metadata.generation
    if phase in (PointPhase.SUCCEEDED, PointPhase.FAILED):
        status.finished_at = now
    reason = PointPhase.RUNNING if phase is PointPhase.PENDING else phase
    for type_, value in (
        (ConditionType.READY, phase is PointPhase.SUCCEEDED),
        (ConditionType.RECONCILING, phase is PointPhase.RUNNING),
        (ConditionType.STALLED, phase is PointPhase.FAILED),
    ):
        status.conditions = set_condition(
            status.conditions, type_, value, reason, message,
            now=now, generation=point.metadata.generation,
        )  # fmt: skip


def _what(targets: list[Target]) -> str:
    return f"Taking {' and '.join(t.value for t in targets)} together"


def _summary(status: RestorePointStatus) -> str:
    parts = []
    if status.database is not None:
        parts.append(f"database dumped to {status.database.backup} ({status.database.size} B)")
    if status.storage is not None and status.storage.copy_:
        parts.append(f"{status.storage.objects} files copied to {status.storage.copy_}")
    elif status.storage is not None:
        parts.append(f"files as of {status.storage.as_of.isoformat()} (object versions)")
    return "; ".join(parts)


def invalid(status: RestorePointStatus, message: str, generation: int, now: datetime) -> bool:
    """Record bad input (Stalled, InvalidSpec; the phase stays Pending); False if recorded."""
    if status.message == message and status.phase is PointPhase.PENDING:
        return False
    status.message = message
    status.observed_generation = generation  # kstatus: Failed (Stalled), not InProgress
    for type_, value in (
        (ConditionType.READY, False),
        (ConditionType.RECONCILING, False),
        (ConditionType.STALLED, True),
    ):
        status.conditions = set_condition(
            status.conditions, type_, value, Reason.INVALID_SPEC, message,
            now=now, generation=generation,
        )  # fmt: skip
    return True
