"""An in-memory host for the engine: records statuses and Events, plays approval, abort and
resume-traffic.

Stands in for the Kubernetes API in engine tests, so each claim about the engine is checked
without a cluster and without real time passing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rollback_operator.api.rollback import RollbackStatus
from rollback_operator.reconcile.queue import RolledBack


@dataclass
class SteppingClock:
    """A clock that moves one second each time it is read."""

    at: datetime = field(default_factory=lambda: datetime(2024, 1, 1, 3, tzinfo=UTC))

    def now(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


@dataclass
class MemoryReports:
    """Keeps reports in a dict."""

    reports: dict[str, str] = field(default_factory=dict)

    log_lines: dict[str, str] = field(default_factory=dict)

    async def store(self, markdown: str) -> str:
        name = f"report-{len(self.reports) + 1}"
        self.reports[name] = markdown
        return name

    async def log(self, key: str, line: str) -> str:
        self.log_lines[key] = line
        return "memory"


@dataclass
class MemoryHost:
    """Recorder and Controls in memory."""

    generation_now: int = 1
    abort: bool = False
    approver: str | None = None
    requester: str | None = None  # the requested-by annotation
    resume: bool = False  # the resume-traffic annotation
    queue: list[int] = field(default_factory=list)  # positions admit() returns, then 0
    stop_after_pauses: int | None = None
    statuses: list[RollbackStatus] = field(default_factory=list)
    events: list[tuple[bool, str, str]] = field(default_factory=list)
    pauses: int = 0
    released: bool = False
    on_pause: list[str] = field(default_factory=list)  # "approve[:NAME]", "abort", "resume"
    meanwhile: list[Callable[[], object]] = field(default_factory=list)
    """What others do to the world while this rollback waits: one call per pause, in order."""
    ahead: dict[str, RolledBack] = field(default_factory=dict)
    """Targets a rollback that went ahead of this one rolled back (the index's account)."""

    async def save(self, status: RollbackStatus) -> None:
        self.statuses.append(status.model_copy(deep=True))

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        self.events.append((warning, reason, message))

    def abort_requested(self) -> bool:
        return self.abort

    def approved_by(self) -> str | None:
        return self.approver

    def requested_by(self) -> str | None:
        return self.requester

    def resume_requested(self) -> bool:
        return self.resume

    def generation(self) -> int:
        return self.generation_now

    async def admit(self) -> int:
        return self.queue.pop(0) if self.queue else 0

    async def release(self) -> None:
        self.released = True

    def rolled_back_ahead(self) -> dict[str, RolledBack]:
        return dict(self.ahead)

    async def pause(self, seconds: float) -> bool:
        self.pauses += 1
        if self.meanwhile:
            self.meanwhile.pop(0)()
        if self.on_pause:
            action = self.on_pause.pop(0)
            if action.startswith("approve"):  # "approve" (by alice) or "approve:NAME"
                self.approver = action.partition(":")[2] or "alice"
            elif action == "abort":
                self.abort = True
            elif action == "resume":
                self.resume = True
        return self.stop_after_pauses is not None and self.pauses >= self.stop_after_pauses

    @property
    def last(self) -> RollbackStatus:
        return self.statuses[-1]

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


class MemoryJournal:
    """A `Journal` kept in a dict, as the engine keeps one per step (shared across its redos)."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    @property
    def recorded(self) -> dict[str, str]:
        return dict(self.ids)

    async def record(self, **ids: str) -> None:
        self.ids.update(ids)
