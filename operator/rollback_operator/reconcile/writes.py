"""How the engine's record reaches the API server: as few writes as crash safety allows.

Why this module exists: every status write is a round trip the rollback waits for, and on a
busy API server those writes were most of a quick rollback's time (docs/benchmarks.md). The
engine says when its record must be durable (`save`: before a provider call that changes
something, before a wait, at the end) and when it only changed (`later`). A change rides on
the next write, or gets a write of its own once it has waited `linger` seconds, so the record
a person watches is never more than that behind. Writes asked for in the same turn of the
event loop (the steps of a parallel group starting together) go as one. An Event waits for the
write that makes what it reports durable, so the Events never run ahead of the record.

Events are for the person reading `kubectl describe` at 3 a.m.: the start, every warning, the
end, the waits on people. Every Event is also a write the API server stores for an hour, so a
Normal one that only repeats the status (`QUIET`: a step done, passing through Planning or
Verifying) is logged and not posted, and of the phases one write records only the last gets an
Event (Planning, Queued and Running written together: Running). The end's Event names every step
that changed something.

A refused write (409, 429, 5xx) is tried again until it lands or the operator stops: a crash
there would leave a step half done.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from dataclasses import dataclass, field

from rollback_operator.api.rollback import Phase, RollbackStatus
from rollback_operator.providers.errors import RetryableError
from rollback_operator.reconcile.ports import Controls, Recorder, Stopping
from rollback_operator.reconcile.runner import RetryPolicy

logger = logging.getLogger(__name__)
LINGER = 5.0
"""Seconds a change waits for the engine's next write before it is written on its own. Such a
change is progress a person may like to see (one instant rollback done while the other still
polls, Planning while the targets are read, the report being written), never one crash safety
needs; each such write is a status patch the API server stores and every watcher is sent. At
1 s, 100 quick rollbacks at once made 2.3 of them per rollback; a person does not tell 5 s
behind from 1 s."""
QUIET = frozenset({"StepSucceeded", Phase.PLANNING.value, Phase.VERIFYING.value})
"""Reasons of Normal Events that only repeat what the status says: logged, never posted."""
PHASES = frozenset(Phase)


@dataclass(frozen=True)
class _Event:
    warning: bool
    reason: str
    message: str
    context: contextvars.Context | None = None  # where it was raised: its log line says so


@dataclass(kw_only=True)
class Writes:
    """The write path of one run: a `Recorder` that coalesces writes and orders Events."""

    recorder: Recorder
    retry: RetryPolicy
    controls: Controls
    linger: float = LINGER
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _asked: int = field(default=0, init=False)  # saves asked for so far
    _written: int = field(default=0, init=False)  # saves covered by a write that landed
    _changed_at: float | None = field(default=None, init=False)
    """Loop time of the oldest change no write carries yet (None: every change is written)."""
    _events: list[_Event] = field(default_factory=list, init=False)  # waiting for a write
    _flusher: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _context: contextvars.Context = field(default_factory=contextvars.copy_context, init=False)
    """The run's own (made in its task, no step bound): a write's log lines are about the
    rollback, whichever step's task makes the write."""

    def later(self, status: RollbackStatus) -> None:
        """`status` changed: the next `save` carries the change, or a write `linger` seconds
        after it was noted if none comes first."""
        if self._changed_at is None:
            self._changed_at = asyncio.get_running_loop().time()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._write_soon(status))

    async def close(self) -> None:
        """End the run's background write; a change it held is redone by the next run."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    async def save(self, status: RollbackStatus) -> None:
        """Make `status` durable: returns once a write holding it (or a later state) landed."""
        self._asked += 1
        ticket = self._asked
        await asyncio.sleep(0)  # parallel steps asking in this turn join one write
        attempt = 0
        while self._written < ticket:
            attempt += 1
            try:
                await self._write(status, ticket)
            except RetryableError as error:
                delay = self.retry.delay(attempt, error.retry_after)
                logger.warning("Status write refused (%s); trying again in %.1fs", error, delay)
                if await self.controls.pause(delay):
                    raise Stopping from error

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        """Post an Event now, or after the write that makes what it reports durable (a `QUIET`
        one is only logged)."""
        if not warning and reason in QUIET:
            logger.info("%s: %s", reason, message)
        elif self._changed_at is not None:
            self._events.append(_Event(warning, reason, message, contextvars.copy_context()))
        else:
            await self._post(_Event(warning, reason, message))

    async def _write(self, status: RollbackStatus, ticket: int) -> None:
        async with self._lock:
            if self._written >= ticket:
                return  # a write made while this one waited carried it
            # What the write holds is taken now, before its first await: every save asked so
            # far, every change noted so far, and the Events that report them.
            covers, events, changed_at = self._asked, self._events, self._changed_at
            self._events, self._changed_at = [], None
            landing = asyncio.create_task(self._land(status, events), context=self._context.copy())
            try:
                # Shielded: kopf cancels a Rollback's daemon once the watch brings back its final
                # status, maybe before this write's answer. The write still lands, is counted
                # and posts its Events; only the run stops waiting for it.
                await asyncio.shield(landing)
            except asyncio.CancelledError:
                raise
            except BaseException:
                self._events = events + self._events
                if changed_at is not None:  # the older change is still unwritten
                    self._changed_at = min(changed_at, self._changed_at or changed_at)
                raise
            self._written = covers

    async def _land(self, status: RollbackStatus, events: list[_Event]) -> None:
        """One write, then the Events it made durable."""
        await self.recorder.save(status)
        for event in _folded(events):
            await self._post(event)

    async def _write_soon(self, status: RollbackStatus) -> None:
        """Write once the oldest unwritten change has waited `linger` (a write that carried
        the changes meanwhile starts the wait again at the next change)."""
        loop = asyncio.get_running_loop()
        while (changed_at := self._changed_at) is not None:
            if (left := changed_at + self.linger - loop.time()) > 0:
                await asyncio.sleep(left)
                continue
            try:
                await self.save(status)
            except Exception as error:  # any failure: the change stays noted for the next write
                logger.warning("Status write deferred to the next one: %s", error)
            return

    async def _post(self, event: _Event) -> None:
        post = self.recorder.event(
            warning=event.warning, reason=event.reason, message=event.message
        )
        if event.context is None:
            await post
        else:  # in the task that raised it: its log line names that step
            await asyncio.create_task(post, context=event.context)


def _folded(events: list[_Event]) -> list[_Event]:
    """The Events one write made durable, less the Normal phase Events a later phase in the same
    write took over (each is logged, in the task that raised it)."""
    phases = [e for e in events if e.reason in PHASES]
    passed = [e for e in phases[:-1] if not e.warning]
    for event in passed:
        context = event.context or contextvars.copy_context()
        context.run(logger.info, "%s: %s", event.reason, event.message)
    return [e for e in events if not any(e is p for p in passed)]
