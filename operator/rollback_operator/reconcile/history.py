"""Which finished automatic Rollbacks a policy's `historyLimit` lets go.

Pure: the handlers feed it the rollback index's entries of one policy. Only automatic
Rollbacks (those a policy created) count and go, and only once finished with nothing left
stopped: a running one, a manual one, or one holding traffic stopped is never chosen. Their
reports outlive them (`handlers.deletion` keeps one the archive does not hold).
"""

from __future__ import annotations

from collections.abc import Iterable

from rollback_operator.reconcile.queue import RollbackEntry


def beyond_limit(entries: Iterable[RollbackEntry], limit: int | None) -> list[RollbackEntry]:
    """The finished automatic rollbacks older than the newest `limit`, oldest first (None:
    no limit, none)."""
    if limit is None:
        return []
    finished = sorted(
        (e for e in entries if e.automatic and not e.active and not e.traffic_stopped),
        key=lambda e: e.order,
    )
    return finished[: max(0, len(finished) - limit)]
