"""The Rollback resource: one execution of the runbook, its plan, steps and outcome.

Field descriptions double as CRD documentation (`kubectl explain rollback.spec`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, StrictBool, model_validator

from rollback_operator.api.common import (
    ALL_TARGETS,
    QUICK_TARGETS,
    ApiObject,
    LocalObjectRef,
    Model,
    NonEmpty,
    Target,
    Timestamp,
    default_targets,
)
from rollback_operator.api.conditions import Condition, ReasonWord


class DeploymentPin(Model):
    """Roll a frontend or backend back to this deployment."""

    deployment_id: NonEmpty = Field(description="Provider deployment id to make live.")


class BackupPin(Model):
    """Restore the database from this backup."""

    backup: NonEmpty = Field(description="Backup object name (key relative to the prefix).")


class StoragePin(Model):
    """Restore files as they were at this time."""

    as_of: Timestamp = Field(description="RFC 3339 time, such as 2024-01-01T00:00:00Z.")


class Pins(Model):
    """Explicit rollback targets; the default is each target's last good state."""

    frontend: DeploymentPin | None = None
    backend: DeploymentPin | None = None
    database: BackupPin | None = None
    storage: StoragePin | None = None
    restore_point: LocalObjectRef | None = Field(
        default=None,
        description="A RestorePoint: database and storage as it holds them, one moment for "
        "both; instead of the database and storage pins.",
    )

    def pinned(self) -> list[Target]:
        """The targets with a pin."""
        return [t for t in ALL_TARGETS if getattr(self, t.value) is not None]


class RollbackSpec(Model):
    """What to roll back, how, to what, and why."""

    policy_ref: LocalObjectRef = Field(description="The RollbackPolicy that says how to reach it.")
    mode: Literal["quick", "full"] = Field(
        default="quick",
        description="quick: instant rollback of frontend and backend; full: the whole runbook.",
    )
    targets: list[Target] | None = Field(
        default=None,
        min_length=1,
        description="Layers to roll back. Default: quick -> frontend, backend; full -> all four.",
    )
    to: Pins = Field(default_factory=Pins, description="Optional pins; default last good state.")
    version: str | None = Field(default=None, description="What we roll back to, for the record.")
    reason: str | None = Field(default=None, description="Why, for the record and notifications.")
    dry_run: StrictBool = Field(default=False, description="Plan only; change nothing.")
    require_approval: StrictBool = Field(
        default=False, description="Wait in AwaitingApproval until approved by annotation."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.targets is not None and len(set(self.targets)) != len(self.targets):
            raise ValueError("targets: each target may appear once")
        chosen = self.chosen_targets()
        if self.mode == "quick":
            extra = [t.value for t in chosen if t not in QUICK_TARGETS]
            if extra:
                raise ValueError(
                    f"targets: quick mode rolls back frontend and backend only, not "
                    f"{', '.join(extra)}; use mode: full"
                )
        stray = [t.value for t in self.to.pinned() if t not in chosen]
        if stray:
            raise ValueError(f"to: pins for targets not selected: {', '.join(stray)}")
        if self.to.restore_point is not None:
            _restore_point_fits(self.to, chosen)
        return self

    def chosen_targets(self) -> list[Target]:
        """The targets this rollback acts on, defaults applied, in the runbook's order."""
        if self.targets is not None:
            return [t for t in ALL_TARGETS if t in self.targets]
        return default_targets(self.mode)


def _restore_point_fits(to: Pins, chosen: list[Target]) -> None:
    """A restore point replaces the database and storage pins, and needs one of the two."""
    if to.database is not None or to.storage is not None:
        raise ValueError("to.restorePoint: comes instead of to.database and to.storage")
    if Target.DATABASE not in chosen and Target.STORAGE not in chosen:
        raise ValueError(
            "to.restorePoint: needs database or storage among the targets (mode: full)"
        )


class Phase(ReasonWord):
    """Where a rollback is in its life."""

    PENDING = "Pending"
    PLANNING = "Planning"
    PLANNED = "Planned"
    AWAITING_APPROVAL = "AwaitingApproval"
    QUEUED = "Queued"
    RUNNING = "Running"
    VERIFYING = "Verifying"
    SUCCEEDED = "Succeeded"
    PARTIALLY_FAILED = "PartiallyFailed"
    FAILED = "Failed"
    ABORTED = "Aborted"


TERMINAL_PHASES = frozenset(
    {Phase.PLANNED, Phase.SUCCEEDED, Phase.PARTIALLY_FAILED, Phase.FAILED, Phase.ABORTED}
)
STARTED_PHASES = frozenset({Phase.RUNNING, Phase.VERIFYING})
FAILED_PHASES = frozenset({Phase.FAILED, Phase.PARTIALLY_FAILED, Phase.ABORTED})
"""Ends that did not go as asked: a Warning Event, a failure notice, a follow-up in the report."""


class StepState(StrEnum):
    """Where one step is."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class StepStatus(Model):
    """The record of one step: what ran, when, how often, with which external ids."""

    name: str = Field(description="Step name, such as stop-traffic or restore-database.")
    target: Target | None = Field(default=None, description="The layer it acts on, if any.")
    state: StepState = StepState.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    message: str | None = None
    external_ids: dict[str, str] = Field(default_factory=dict)


class DeploymentPlan(Model):
    """A frontend or backend move."""

    from_: str | None = Field(default=None, alias="from", description="Live deployment now.")
    to: str = Field(description="Deployment that will be live.")
    serving: bool | None = Field(
        default=None,
        description=(
            "Whether the layer served traffic when planned; one that did not is left stopped."
        ),
    )


class DatabasePlan(Model):
    """A database restore."""

    backup: str
    taken_at: datetime | None = None
    safety_backup: bool = Field(
        default=True, description="Whether the current database is dumped before the restore."
    )
    data_loss_window: str | None = Field(
        default=None, description="Writes since the backup that the restore discards."
    )
    size_bytes: int | None = Field(default=None, description="Size of the backup object.")
    format: str | None = Field(
        default=None, description="custom, custom-gzip, plain or plain-gzip, read from its bytes."
    )
    schemas: list[str] | None = Field(
        default=None,
        description="The schemas the restore replaces (the target's schemas, or every schema "
        "the backup holds); the others are untouched.",
    )
    carried_triggers: list[str] | None = Field(
        default=None,
        description="Triggers on tables outside the restored schemas that call a function "
        "inside them (Supabase's sign-up trigger on auth.users): kept through the restore and "
        "created again, as they were, once the backup's objects are back.",
    )


class StoragePlan(Model):
    """A point-in-time restore of files."""

    as_of: datetime
    objects_to_restore: int = 0
    objects_to_hide: int = 0
    objects_unchanged: int = Field(default=0, description="Objects already as they were.")
    bytes_to_restore: int = Field(default=0, description="Bytes the restore copies.")
    source: str | None = Field(
        default=None, description="versions, or the dated backup folder restored from."
    )


class RollbackPlan(Model):
    """What each target will move from and to."""

    frontend: DeploymentPlan | None = None
    backend: DeploymentPlan | None = None
    database: DatabasePlan | None = None
    storage: StoragePlan | None = None


class CheckResult(Model):
    """One verification check."""

    name: str
    passed: bool
    message: str = ""


class MonitoredRule(Model):
    """One policy rule as Prometheus saw it while the rollback ran (the runbook's "Monitoring
    During Rollback")."""

    name: str
    thresholds: str = Field(default="", description="Such as 'warning > 0.02, critical > 0.05'.")
    samples: int = Field(default=0, description="Points with data in the sampled range.")
    min: float | None = None
    max: float | None = None
    last: float | None = None
    worst: Literal["Clear", "Warning", "Critical", "NoData", "Unknown"] = Field(
        default="Unknown", description="The worst level any sampled point reached."
    )
    message: str = Field(default="", description="Why the rule could not be sampled, if so.")


class ReportRef(Model):
    """Where the incident report is stored."""

    config_map: str | None = None
    s3_key: str | None = None


class RollbackStatus(Model):
    """What the operator did and observed."""

    observed_generation: int | None = None
    accepted_generation: int | None = Field(
        default=None, description="The generation the plan was made from; later edits refused."
    )
    phase: Phase = Phase.PENDING
    conditions: list[Condition] = Field(default_factory=list)
    mode: Literal["quick", "full"] | None = None
    targets: list[Target] = Field(default_factory=list)
    plan: RollbackPlan | None = None
    steps: list[StepStatus] = Field(default_factory=list)
    verification: list[CheckResult] = Field(default_factory=list)
    monitoring: list[MonitoredRule] = Field(
        default_factory=list, description="Policy rule values sampled over the rollback."
    )
    queue_position: int | None = Field(default=None, description="Place in the queue, from 1.")
    approved_by: str | None = None
    report_ref: ReportRef | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Rollback(ApiObject):
    """A Rollback object as read from the API."""

    spec: RollbackSpec
    status: RollbackStatus = Field(default_factory=RollbackStatus)
