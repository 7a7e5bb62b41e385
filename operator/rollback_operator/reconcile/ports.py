"""What the engine needs from its host: a place to record status, live controls, a clock.

The kopf handlers implement these against the Kubernetes API; tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from rollback_operator.api.rollback import RollbackStatus
from rollback_operator.reconcile.queue import RolledBack


class Stopping(Exception):
    """The operator is shutting down; the record stays as it is and is resumed later."""


class Clock(Protocol):
    """Wall-clock time, injected so tests need not wait."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class Recorder(Protocol):
    """Durable record of a rollback: its status and its Events."""

    async def save(self, status: RollbackStatus) -> None:
        """Persist the status; returns once the API server has it."""
        ...

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        """Post a Kubernetes Event about the rollback."""
        ...


class Controls(Protocol):
    """The live object as people and the queue see it while the rollback runs."""

    def abort_requested(self) -> bool:
        """Whether the abort annotation is set."""
        ...

    def approved_by(self) -> str | None:
        """Who approved it, from the approval annotation."""
        ...

    def requested_by(self) -> str | None:
        """Who asked for it, from the requested-by annotation (None: nobody said)."""
        ...

    def resume_requested(self) -> bool:
        """Whether the resume-traffic annotation is set."""
        ...

    def generation(self) -> int:
        """metadata.generation now."""
        ...

    async def admit(self) -> int:
        """0 when this rollback may run now; else its place in the queue, from 1."""
        ...

    async def release(self) -> None:
        """Give up the targets this rollback held in the queue."""
        ...

    def rolled_back_ahead(self) -> Mapping[str, RolledBack]:
        """Targets (by name) of this rollback that a rollback which went ahead of it already
        rolled back (`queue.rolled_back_ahead`)."""
        ...

    async def pause(self, seconds: float) -> bool:
        """Wait up to `seconds` or until the object changes; True if the operator is stopping."""
        ...


class ReportStore(Protocol):
    """Where incident reports go."""

    async def store(self, markdown: str) -> str:
        """Store the report; returns the name of the ConfigMap it is in."""
        ...

    async def log(self, key: str, line: str) -> str:
        """Add `line` to the namespace's deployment log under `key` (once: the same key again
        changes nothing); returns where the log is, for the step's message."""
        ...
