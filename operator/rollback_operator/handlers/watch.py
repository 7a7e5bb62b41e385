"""Every watch event of the operator's kinds, handed to the state gauges (`telemetry.states`).

Why a handler of its own: the gauges say what each object is now (a rollback's phase, traffic
left stopped, a policy's reach, the newest restore point), which the other handlers see only
while they act on it. A watch event arrives for every change, for every object on the first
list after a (re)start, and for every deletion, so the picture stays whole without storing
anything. These handlers write nothing: no status, no annotation, no finalizer, and their
success is not logged (`telemetry.logs.QuietWatchFilter`) unless the operator runs verbose.
"""

from __future__ import annotations

from typing import Any

import kopf

from rollback_operator.api import GROUP, VERSION
from rollback_operator.handlers.deps import Deps
from rollback_operator.telemetry.logs import WATCH_HANDLER_PREFIX

KINDS = {
    "rollbacks": "Rollback",
    "rollbackpolicies": "RollbackPolicy",
    "restorepoints": "RestorePoint",
}
"""Plural -> kind of each watched resource."""


def _watcher(kind: str) -> Any:
    async def seen(*, event: kopf.RawEvent, memo: Any, **_: Any) -> None:
        deps: Deps = memo
        body = event["object"]
        uid = str(body.get("metadata", {}).get("uid", ""))
        if event["type"] == "DELETED":
            deps.telemetry.states.forget(kind, uid)
        else:
            deps.telemetry.states.see(kind, uid, body)

    seen.__name__ = f"watch_{kind.lower()}"
    return seen


def register(registry: kopf.OperatorRegistry) -> None:
    """One event handler per kind."""
    for plural, kind in KINDS.items():
        handler_id = f"{WATCH_HANDLER_PREFIX}{plural}"
        kopf.on.event(GROUP, VERSION, plural, registry=registry, id=handler_id)(_watcher(kind))
