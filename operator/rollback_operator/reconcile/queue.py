"""Who may run now: one active Rollback per policy and target, the rest wait in order; and
which targets a rollback that went ahead already rolled back.

Pure: the handlers feed it what the operator's index holds about other rollbacks, one
`RollbackEntry` each (the policy's evaluation reads the same entries).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rollback_operator.api.rollback import (
    STARTED_PHASES,
    TERMINAL_PHASES,
    Phase,
    RollbackStatus,
    StepState,
)
from rollback_operator.reconcile.planner import destinations
from rollback_operator.reconcile.steplist import TRAITS

MOVED_PHASES = frozenset({Phase.SUCCEEDED, Phase.PARTIALLY_FAILED})
"""The ends of a rollback that may have moved a target for good (a Failed one moved none; an
Aborted one was called off, so what it did is not the request it answered)."""


@dataclass(frozen=True, kw_only=True)
class RollbackEntry:
    """What the operator knows about one Rollback from its index: enough to queue it behind
    others, and for its policy to see whether it is active and which breaches it answers."""

    uid: str
    name: str
    created: str
    phase: Phase
    targets: frozenset[str]
    episodes: frozenset[str] = frozenset()
    """Episode keys an automatic rollback was created for (none for a manual one)."""
    automatic: bool = False
    """Created by its policy (label rollback.mindmate.app/trigger: policy)."""
    traffic_stopped: bool = False
    """Its condition TrafficStopped is True: traffic it stopped is still stopped."""
    finished: str = ""
    """status.finishedAt ("" while it has not ended)."""
    rolled_back: tuple[tuple[str, str], ...] = ()
    """(target, where it took it, in words) for each target it moved for good (`moved`)."""

    @property
    def order(self) -> tuple[str, str]:
        """First come, first served; the name breaks ties."""
        return (self.created, self.name)

    @property
    def active(self) -> bool:
        """Not finished yet (a Rollback without a phase has not started planning)."""
        return self.phase not in TERMINAL_PHASES


def position(me: RollbackEntry, others: Iterable[RollbackEntry], running: set[str]) -> int:
    """0 when `me` may start; else how many overlapping rollbacks are ahead of it.

    Ahead are overlapping rollbacks that have started (by their phase, or by `running`, the
    uids this process admitted whose phase may not be visible yet) and overlapping queued
    rollbacks created earlier.
    """
    ahead = 0
    for other in others:
        if other.uid == me.uid or not other.targets & me.targets:
            continue
        started = other.phase in STARTED_PHASES or other.uid in running
        earlier = other.phase == Phase.QUEUED and other.order < me.order
        ahead += started or earlier
    return ahead


@dataclass(frozen=True, kw_only=True)
class RolledBack:
    """A target another rollback of the same request already rolled back."""

    by: str
    """That rollback's name."""
    to: str
    """Where it took the target, in words (`planner.destinations`)."""


def moved(phase: Phase, wire: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(target, destination) of each target a rollback moved for good: it ended Succeeded or
    PartiallyFailed and every step that changes that target succeeded. `wire` is its status
    as stored, read only once the phase says it may hold such a target."""
    if phase not in MOVED_PHASES:
        return ()
    status = RollbackStatus.model_validate(wire)
    where = destinations(status.plan)
    changes: dict[str, list[StepState]] = {}
    for step in status.steps:
        if step.target is not None and TRAITS[step.name].destructive:
            changes.setdefault(step.target.value, []).append(step.state)
    return tuple(
        (target, where[target])
        for target, states in changes.items()
        if target in where and all(s == StepState.SUCCEEDED for s in states)
    )


def rolled_back_ahead(me: RollbackEntry, others: Iterable[RollbackEntry]) -> dict[str, RolledBack]:
    """The targets of `me` that a rollback which went ahead of it already rolled back.

    Went ahead: another rollback of these targets that had not ended when `me` was created
    (created before it, or created after and admitted first) and has ended now. Two such
    rollbacks are one request made twice (two people, or a policy and a person, at the same
    incident), so the second must not take a target further than the first took it. One that
    ended before `me` was created is history: `me` is a new request and plans from the state
    it left. A creation time has whole seconds: an end in the same second counts as before it
    (a script applying a rollback as soon as the last one ended asks for a new one).
    """
    created = _moment(me.created)
    found: dict[str, RolledBack] = {}
    for other in sorted(others, key=lambda o: o.order):
        if other.uid == me.uid or not other.finished or created is None:
            continue
        finished = _moment(other.finished)
        if finished is None or finished < created + timedelta(seconds=1):
            continue
        for target, to in other.rolled_back:
            if target in me.targets:
                found.setdefault(target, RolledBack(by=other.name, to=to))
    return found


def _moment(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None
