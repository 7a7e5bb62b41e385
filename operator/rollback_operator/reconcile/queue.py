"""Who may run now: one active Rollback per policy and target, the rest wait in order.

Pure: the handlers feed it what the operator's index holds about other rollbacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rollback_operator.api.rollback import STARTED_PHASES, Phase


@dataclass(frozen=True)
class QueueEntry:
    """What the queue needs to know about one rollback."""

    uid: str
    name: str
    created: str
    phase: Phase
    targets: frozenset[str]

    @property
    def order(self) -> tuple[str, str]:
        """First come, first served; the name breaks ties."""
        return (self.created, self.name)


def position(me: QueueEntry, others: Iterable[QueueEntry], running: set[str]) -> int:
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
