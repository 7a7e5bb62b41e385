"""Who may run now: one active Rollback per policy and target, the rest wait in order.

Pure: the handlers feed it what the operator's index holds about other rollbacks, one
`RollbackEntry` each (the policy's evaluation reads the same entries).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rollback_operator.api.rollback import STARTED_PHASES, TERMINAL_PHASES, Phase


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
