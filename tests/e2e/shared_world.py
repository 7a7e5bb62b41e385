"""A FakeWorld that several operator processes share through one file, for the HA tests.

`FakeWorld` loads its file once and then trusts its memory. With two peered operators, the one
that takes over would act on the state it loaded at start-up and overwrite what the other did.
This world takes an exclusive lock on the file around every provider call, reloads the state
first, and records which operator made each call (`state["actors"][op]`, and `state["order"]`
of all calls), so a test can tell
who acted and count calls across processes; a lost update cannot hide a repeated call.
A test can also make one operator's call hang (`state["hold"] = {actor: op}`), to have that
operator stopped in the middle of a provider call.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rollback_operator.providers.base import StepResult
from sandbox.fakes.memory import FakeWorld, State


class SharedFakeWorld(FakeWorld):
    """The world file is the truth: lock it, reload it, act, save it, for every call."""

    def __init__(self, state: State | None = None, path: Path | None = None) -> None:
        super().__init__(state, path)
        self.actor = "operator"
        self._lock_file: IO[bytes] | None = None
        self._depth = 0  # coroutines of this process inside a turn (they share self.state)

    @classmethod
    def shared(cls, path: Path, actor: str) -> SharedFakeWorld:
        """The world at `path`, acted on by the operator named `actor`."""
        world = cls(json.loads(path.read_text()), path)
        world.actor = actor
        return world

    async def op(self, op: str, mutate: Callable[[], str | None], done: str) -> StepResult:
        await self._held(op)
        with self._turn():
            self._record(op)
            return await super().op(op, mutate, done)

    def read(self, op: str) -> None:
        with self._turn():
            self._record(op)
            super().read(op)
            self.save()

    async def _held(self, op: str) -> None:
        """Wait before `op` while the file's `hold` names it for this actor: a provider call
        that hangs. Records `held` on arrival and, if the caller is cancelled, `abandoned`."""
        assert self.path is not None
        arrived = False
        try:
            while (json.loads(self.path.read_text()).get("hold") or {}).get(self.actor) == op:
                if not arrived:
                    arrived = True
                    self._note("held", op)
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self._note("abandoned", op)
            raise

    def _note(self, what: str, op: str) -> None:
        with self._turn():
            self.state.setdefault(what, []).append([self.actor, op])
            self.save()

    def _record(self, op: str) -> None:
        """Who made this call: per operation, and in the order of all calls."""
        self.state.setdefault("actors", {}).setdefault(op, []).append(self.actor)
        self.state.setdefault("order", []).append([self.actor, op])

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """Hold the file lock (once per process) and start from the file's state."""
        assert self.path is not None, "a shared world needs a file"
        if self._depth == 0:
            if self._lock_file is None:
                self._lock_file = self.path.with_suffix(".lock").open("ab")
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)  # SIGKILL releases it too
            self._reload()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _reload(self) -> None:
        """Replace the state in place: the fakes hold references to its top-level parts."""
        assert self.path is not None
        fresh: State = json.loads(self.path.read_text())
        for key in set(self.state) - set(fresh):
            del self.state[key]
        for key, value in fresh.items():
            old = self.state.get(key)
            if isinstance(old, dict) and isinstance(value, dict):
                old.clear()
                old.update(value)
            elif isinstance(old, list) and isinstance(value, list):
                old[:] = value
            else:
                self.state[key] = value
