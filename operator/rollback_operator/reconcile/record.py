"""One run's hand on its Rollback's record: phase moves, conditions, writes, Events, pauses.

The engine (the steps) and its gates (plan, approval, queue) change the same status through
these few calls, so a phase always moves with its conditions and its Event, and every write goes
through the run's one `writes.Writes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollback_operator.api.conditions import ConditionType, Reason, find
from rollback_operator.api.rollback import FAILED_PHASES, Phase, RollbackStatus
from rollback_operator.reconcile import transitions, writes
from rollback_operator.reconcile.ports import Clock, Controls, Stopping


@dataclass(frozen=True, kw_only=True)
class Record:
    """Changes to one run's status, written now or with the next write."""

    writes: writes.Writes
    controls: Controls
    clock: Clock
    tick: float

    def mark(
        self, status: RollbackStatus, type_: ConditionType, value: bool, reason: Reason, text: str
    ) -> None:
        """Set one detail condition (Planned, Approved, Verified, ...), written with the next."""
        transitions.mark(
            status,
            type_,
            value,
            reason,
            text,
            now=self.clock.now(),
            generation=self.controls.generation(),
        )

    async def enter(
        self,
        status: RollbackStatus,
        phase: Phase,
        message: str,
        reason: Reason | None = None,
        *,
        durable: bool = True,
    ) -> None:
        """Move to `phase`, written now or, with `durable=False`, with the next write (no wait
        and no provider call that changes something comes first); its Event follows the write,
        posted by the write itself: kopf stops the daemon once it sees a final phase, maybe
        before the daemon hears the write's answer, and the end's Event must still go out."""
        before = status.phase
        now, generation = self.clock.now(), self.controls.generation()
        transitions.enter(status, phase, message, now=now, generation=generation, reason=reason)
        self.writes.later(status)
        if before != phase or phase == Phase.QUEUED:
            warning = phase in FAILED_PHASES
            await self.writes.event(warning=warning, reason=phase.value, message=message)
        if durable:
            await self.save(status)

    async def save(self, status: RollbackStatus) -> None:
        """Record `status` now, with every change noted since the last write."""
        await self.writes.save(status)

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        """Post an Event once what it reports is written."""
        await self.writes.event(warning=warning, reason=reason, message=message)

    async def pause(self) -> None:
        """Wait one tick (or until the object changes); raise Stopping if the operator stops."""
        if await self.controls.pause(self.tick):
            raise Stopping

    async def refuse_spec_change(self, status: RollbackStatus) -> None:
        """Say once (condition and Event) that a spec edited after planning is not run."""
        generation, accepted = self.controls.generation(), status.accepted_generation
        if accepted is None or generation == accepted:
            return
        message = (
            f"spec changed after planning (generation {generation}); the rollback keeps "
            f"running generation {accepted}"
        )
        seen = find(status.conditions, ConditionType.SPEC_CHANGE_REFUSED)
        if seen is not None and seen.message == message:
            return
        reason = Reason.SPEC_IMMUTABLE
        self.mark(status, ConditionType.SPEC_CHANGE_REFUSED, True, reason, message)
        await self.save(status)
        await self.event(warning=True, reason=reason.value, message=message)
