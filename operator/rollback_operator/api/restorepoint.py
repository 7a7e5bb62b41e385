"""The RestorePoint resource, and the policy's `restorePoints` schedule that creates them.

A team without a dump pipeline, or with an unversioned bucket, has nothing to roll back to. A
RestorePoint is the operator's own backup: a database dump streamed to the backups bucket and
a storage point in time (the time itself on a versioned bucket; a server-side copy to a dated
folder on an unversioned one), taken together so that a Rollback's `to.restorePoint` returns
both layers to one moment. Field descriptions double as CRD documentation
(`kubectl explain restorepoint.spec`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from croniter import croniter
from pydantic import Field, StrictInt, field_validator, model_validator

from rollback_operator.api.common import (
    ApiObject,
    Duration,
    LocalObjectRef,
    Model,
    Target,
    repeated,
)
from rollback_operator.api.conditions import Condition, ReasonWord

POINT_TARGETS: tuple[Target, ...] = (Target.DATABASE, Target.STORAGE)
SCHEDULE_TRIGGER = "schedule"
"""`rollback.mindmate.app/trigger` of the points a schedule created: the only ones `keep`
deletes."""

# Five fields of digits, names, `*`, `?`, ranges, steps and lists; croniter judges the rest.
CRON_PATTERN = r"^\s*[0-9A-Za-z*?,/\-]+(\s+[0-9A-Za-z*?,/\-]+){4}\s*$"


class PointPhase(ReasonWord):
    """Where a restore point is in its life."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


TERMINAL_POINT_PHASES = frozenset({PointPhase.SUCCEEDED, PointPhase.FAILED})


class RestorePointSpec(Model):
    """What to take, under which policy, and why."""

    policy_ref: LocalObjectRef = Field(description="The RollbackPolicy that says how to reach it.")
    targets: list[Literal["database", "storage"]] | None = Field(
        default=None,
        min_length=1,
        description="Layers to take: database, storage. Default: those the policy has.",
    )
    reason: str | None = Field(default=None, description="Why, for the record.")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if self.targets is not None and (dupes := repeated(self.targets)):
            raise ValueError(f"targets: repeated {', '.join(dupes)}")
        return self

    def chosen_targets(self, defined: list[Target]) -> list[Target]:
        """The layers this point takes, in the runbook's order, given those the policy has."""
        wanted = [Target(t) for t in self.targets] if self.targets else list(POINT_TARGETS)
        return [t for t in POINT_TARGETS if t in wanted and (self.targets or t in defined)]


class DatabasePoint(Model):
    """The database dump a restore point took."""

    backup: str = Field(description="Backup name, relative to the database backups prefix.")
    size: int = Field(default=0, description="Bytes of the dump.")
    taken_at: datetime | None = Field(default=None, description="When the dump started.")


class StoragePointStatus(Model):
    """The storage point in time a restore point took."""

    as_of: datetime = Field(description="The moment the files are restored to.")
    copy_: str | None = Field(
        default=None,
        alias="copy",
        description="A dated folder holding a server-side copy of the files, for buckets "
        "without versioning; null when the bucket's versions are the point.",
    )
    objects: int = Field(default=0, description="Objects copied to the dated folder.")


class RestorePointStatus(Model):
    """What the operator took."""

    observed_generation: int | None = None
    phase: PointPhase = PointPhase.PENDING
    conditions: list[Condition] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)
    database: DatabasePoint | None = None
    storage: StoragePointStatus | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RestorePoint(ApiObject):
    """A RestorePoint object as read from the API."""

    spec: RestorePointSpec
    status: RestorePointStatus = Field(default_factory=RestorePointStatus)


class Keep(Model):
    """Retention of the restore points a schedule created; the oldest go first."""

    count: StrictInt | None = Field(
        default=None, ge=1, description="Keep at most this many; the oldest are deleted."
    )
    max_age: Duration | None = Field(default=None, description="Delete those older than this.")


class RestorePointSchedule(Model):
    """The operator takes its own restore points on a cron schedule."""

    schedule: str = Field(
        pattern=CRON_PATTERN,
        description="Cron expression of five fields (minute hour day month weekday), in UTC.",
        examples=["0 */6 * * *"],
    )
    keep: Keep = Field(
        default_factory=Keep,
        description="Retention: only the points this schedule created are ever deleted, with "
        "the objects they wrote; the newest that succeeded always stays.",
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value) or len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a cron expression of five fields")
        return value
