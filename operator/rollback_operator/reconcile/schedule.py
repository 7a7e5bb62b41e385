"""When a policy's schedule takes a restore point, and which scheduled points `keep` lets go.

Pure functions of the cron expression (UTC), the clock and the points that exist, so they are
tested without a cluster, and a restarted operator decides from the objects alone: the point of
a slot is named after the slot, so it is created once whoever creates it, and a slot missed
while the operator was down is taken once it is back (the latest one only).

Retention only ever considers points the schedule created (the trigger label) that have
ended, and never lets go of the newest one that succeeded, whatever `keep` says: a schedule
that keeps failing must not leave the policy with nothing to roll back to.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from croniter import croniter

from rollback_operator.api import TRIGGER_LABEL
from rollback_operator.api.common import parse_duration
from rollback_operator.api.restorepoint import (
    SCHEDULE_TRIGGER,
    TERMINAL_POINT_PHASES,
    Keep,
    PointPhase,
    RestorePoint,
)

_STAMP = "%Y%m%d%H%M"


def last_slot(cron: str, now: datetime) -> datetime:
    """The newest time of the schedule at or before `now`, in UTC."""
    at = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    found: datetime = croniter(cron, at).get_prev(datetime)
    return found.astimezone(UTC)


def next_slot(cron: str, now: datetime) -> datetime:
    """The first time of the schedule after `now`, in UTC."""
    found: datetime = croniter(cron, now.astimezone(UTC)).get_next(datetime)
    return found.astimezone(UTC)


def point_name(policy: str, slot: datetime) -> str:
    """The name of the point a policy's schedule takes at `slot`."""
    return f"{policy}-{slot.astimezone(UTC).strftime(_STAMP)}"


def due(
    cron: str, now: datetime, since: datetime, taken: Iterable[RestorePoint]
) -> datetime | None:
    """The slot whose point must be created now, if any: the newest slot at or before `now`,
    after `since` (the policy's creation), with no scheduled point of it or of a later slot."""
    slot = last_slot(cron, now)
    if slot <= since:
        return None
    newest = max((_created(p) for p in taken), default=None)
    if newest is not None and newest >= slot:
        return None
    return slot


def scheduled(points: Iterable[RestorePoint], policy: str) -> list[RestorePoint]:
    """The points the schedule of `policy` created, newest first."""
    mine = [
        p
        for p in points
        if p.spec.policy_ref.name == policy
        and p.metadata.labels.get(TRIGGER_LABEL) == SCHEDULE_TRIGGER
    ]
    return sorted(mine, key=_created, reverse=True)


def expired(points: list[RestorePoint], keep: Keep, now: datetime) -> list[RestorePoint]:
    """The scheduled points (newest first, as `scheduled` gives them) that `keep` lets go."""
    ended = [p for p in points if p.status.phase in TERMINAL_POINT_PHASES]
    newest_good = next((p for p in ended if p.status.phase is PointPhase.SUCCEEDED), None)
    oldest = now - parse_duration(keep.max_age) if keep.max_age else None
    out = []
    for place, point in enumerate(ended):
        beyond_count = keep.count is not None and place >= keep.count
        too_old = oldest is not None and _created(point) < oldest
        if (beyond_count or too_old) and point is not newest_good:
            out.append(point)
    return out


def _created(point: RestorePoint) -> datetime:
    stamp = point.metadata.creation_timestamp
    if not stamp:
        return datetime.min.replace(tzinfo=UTC)
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
