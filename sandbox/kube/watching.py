"""Watch events that resume from a resourceVersion, as the API server's watch cache does.

Stock kmock answers every watch by replaying all objects as ADDED and then streaming what
happens after the subscription. A client that LISTs and then WATCHes from the list's
resourceVersion (kopf, client-go informers, ``kubectl get -w``, ``kubectl wait``) then gets
old objects twice and misses anything written between the two requests. kopf reacts by
running create handlers twice. This module keeps a bounded per-resource event log so that
a watch from resourceVersion N gets exactly the events after N, or ``410 Expired`` when N
is older than the log, and it decides what each watcher sees through its selectors.
"""

import asyncio
import collections
import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

import kmock

from sandbox.kube.selectors import Selector

Key = tuple[kmock.resource, str | None, str]  # resource, namespace (None: cluster-wide), name
Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Event:
    """One committed write: ``type`` is ADDED, MODIFIED or DELETED; ``old`` the prior state."""

    rv: int
    type: str
    key: Key
    obj: Obj
    old: Obj | None


@dataclasses.dataclass(frozen=True)
class Scope:
    """What one list or watch request asked for: a resource, maybe a namespace/name, selectors."""

    resource: kmock.resource
    namespace: str | None
    name: str | None
    selector: Selector

    def matches(self, key: Key, obj: Obj) -> bool:
        resource, namespace, name = key
        return (
            resource == self.resource
            and (self.namespace is None or namespace == self.namespace)
            and (self.name is None or name == self.name)
            and self.selector.matches(obj)
        )

    def render(self, event: Event) -> Obj | None:
        """The watch event this scope sees, if any; objects leaving a selector look DELETED."""
        now = self.matches(event.key, event.obj)
        before = event.old is not None and self.matches(event.key, event.old)
        if event.type != "MODIFIED":
            return {"type": event.type, "object": event.obj} if now else None
        if now:
            return {"type": "MODIFIED" if before else "ADDED", "object": event.obj}
        return {"type": "DELETED", "object": event.obj} if before else None

    def describe(self) -> Obj:
        resource = f"{self.resource.group}/{self.resource.version}/{self.resource.plural}"
        return {"resource": resource.lstrip("/"), "namespace": self.namespace}


class EventLog:
    """The last ``size`` events of every resource, for watches that resume from a version."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._events: dict[kmock.resource, collections.deque[Event]] = {}
        self._expired: dict[kmock.resource, int] = {}  # the newest version dropped from the log

    def append(self, event: Event) -> None:
        events = self._events.setdefault(event.key[0], collections.deque(maxlen=self._size))
        if len(events) == events.maxlen:
            self._expired[event.key[0]] = events[0].rv
        events.append(event)

    def since(self, rv: int, scope: Scope) -> list[Obj]:
        """Watch events after ``rv`` for this scope, or one 410 ERROR if they are gone."""
        expired = self._expired.get(scope.resource, 0)
        if rv < expired:
            return [{"type": "ERROR", "object": _expired_status(rv, expired)}]
        events = self._events.get(scope.resource, collections.deque())
        rendered = (scope.render(event) for event in events if event.rv > rv)
        return [item for item in rendered if item is not None]


class Hub:
    """Fans committed events out to the open watches and keeps the recent ones for resuming."""

    def __init__(self, history_size: int) -> None:
        self._log = EventLog(history_size)
        self._queues: dict[asyncio.Queue[Event | None], Scope] = {}

    @property
    def scopes(self) -> list[Scope]:
        """What the open watches watch."""
        return list(self._queues.values())

    def publish(self, event: Event) -> None:
        self._log.append(event)
        for queue in self._queues:
            queue.put_nowait(event)

    def close(self) -> None:
        """End every open watch stream."""
        for queue in self._queues:
            queue.put_nowait(None)

    def subscribe(
        self, scope: Scope, since: int, current: list[Obj], lifetime: float | None
    ) -> AsyncGenerator[Obj, None]:
        """Open a watch and return its events; iterate and close them, or the watch leaks.

        Call it under the lock that writers hold while publishing, so that no event falls
        between the backlog and the subscription. ``since=0`` (resourceVersion "0" or none)
        starts with the ``current`` objects as ADDED; otherwise with the events after it.
        """
        if since:
            backlog = self._log.since(since, scope)
        else:
            backlog = [{"type": "ADDED", "object": obj} for obj in current]
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._queues[queue] = scope
        return self._stream(queue, scope, backlog, lifetime)

    async def _stream(
        self,
        queue: asyncio.Queue[Event | None],
        scope: Scope,
        backlog: list[Obj],
        lifetime: float | None,
    ) -> AsyncGenerator[Obj, None]:
        try:
            for item in backlog:
                yield item
            if any(item["type"] == "ERROR" for item in backlog):
                return
            deadline = None if lifetime is None else asyncio.get_running_loop().time() + lifetime
            while (event := await _next(queue, deadline)) is not None:
                if (rendered := scope.render(event)) is not None:
                    yield rendered
        finally:
            del self._queues[queue]


async def _next(queue: asyncio.Queue[Event | None], deadline: float | None) -> Event | None:
    """The next queued event, or None when the stream is closed or the deadline passes."""
    if deadline is None:
        return await queue.get()
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        return await asyncio.wait_for(queue.get(), max(remaining, 0))
    except TimeoutError:
        return None


def _expired_status(rv: int, expired: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": 410,
        "reason": "Expired",
        "message": f"too old resource version: {rv} ({expired + 1})",
    }
