"""Stateful in-memory fakes of every provider Protocol, for the engine and the operator tests.

One `FakeWorld` holds the state of all targets as plain JSON. It can be saved to a file after
every change, so an operator process killed with SIGKILL and started again meets the same world,
and the test that owns the file can count every mutating call. Faults and crash points are part
of the state: a fault is consumed when raised, a crash point when it fires.

Each fake looks before it acts, like the real adapters must: a call that would change nothing
records a request but not a mutation.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import CheckResult, DatabasePlan, DeploymentPlan, StoragePlan
from rollback_operator.api.targets import DatabaseTarget
from rollback_operator.providers.base import (
    Candidate,
    Journal,
    Notice,
    Notifier,
    PointCopy,
    PointDump,
    Providers,
    SecretReader,
    StepResult,
)
from rollback_operator.providers.errors import (
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)

State = dict[str, Any]
BACKUP_TIME = datetime(2024, 1, 1, tzinfo=UTC)


def default_state() -> State:
    """A world with two deployments per app target, two backups, and versioned storage."""
    return {
        "frontend": {"history": ["dpl_old", "dpl_new"], "live": "dpl_new", "serving": True},
        "backend": {"history": ["d-old", "d-new"], "live": "d-new", "serving": True},
        "database": {
            "backups": {
                "backup_20231231.dump": (BACKUP_TIME - timedelta(days=1)).isoformat(),
                "backup_20240101.dump": BACKUP_TIME.isoformat(),
            },
            "contents": "today",
            "safety": {},
            "restored": {},
        },
        "storage": {"as_of": None, "restored": {}},
        "checks": [],
        "notices": [],
        "calls": {},
        "requests": {},
        "faults": {},
        "crash": None,
        "latency": 0.0,
    }


class FakeWorld:
    """The shared state of every fake, optionally persisted to `path` after each change."""

    def __init__(self, state: State | None = None, path: Path | None = None) -> None:
        self.path = path
        self.state: State = state if state is not None else default_state()
        self.allow_crash = False

    @classmethod
    def load(cls, path: Path) -> FakeWorld:
        """The world saved at `path`."""
        return cls(json.loads(path.read_text()), path)

    def save(self) -> None:
        """Write the state atomically (a reader never sees half a file)."""
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))
            os.replace(tmp, self.path)

    def calls(self, op: str) -> int:
        """How many times `op` changed the world."""
        return int(self.state["calls"].get(op, 0))

    def inject(self, op: str, *faults: Mapping[str, Any]) -> None:
        """Queue faults for `op`: {"kind": "retryable"|"rate-limited"|"permanent", ...}."""
        self.state["faults"].setdefault(op, []).extend(dict(f) for f in faults)
        self.save()

    async def op(self, op: str, mutate: Callable[[], str | None], done: str) -> StepResult:
        """Run one operation: latency, crash point, fault, look-then-act, persist."""
        await asyncio.sleep(float(self.state.get("latency", 0.0)))
        self.state["requests"][op] = self.state["requests"].get(op, 0) + 1
        self._crash(f"before:{op}")
        self._fault(op)
        changed = mutate()
        if changed is not None:
            self.state["calls"][op] = self.calls(op) + 1
        self.save()
        self._crash(f"after:{op}")
        return StepResult(changed or done)

    def read(self, op: str) -> None:
        """A read-only call: only crash points and faults apply."""
        self.state["requests"][op] = self.state["requests"].get(op, 0) + 1
        self._crash(f"before:{op}")
        self._fault(op)

    def _fault(self, op: str) -> None:
        queue = self.state["faults"].get(op) or []
        if not queue:
            return
        fault = queue.pop(0)
        self.save()
        kind, text = fault.get("kind", "retryable"), f"injected {fault.get('kind')} fault"
        if kind == "rate-limited":
            raise RateLimitedError(text, provider="fake", retry_after=fault.get("retry_after"))
        if kind == "permanent":
            raise PermanentError(text, provider="fake")
        raise RetryableError(text, provider="fake")

    def crash_at(self, point: str, skip: int = 0) -> None:
        """Kill this process (SIGKILL) at `point` (`before:OP` or `after:OP`), after `skip`
        earlier passes through it; only where `allow_crash` is set (the operator process)."""
        self.state["crash"] = {"point": point, "skip": skip}
        self.save()

    def _crash(self, point: str) -> None:
        crash = self.state.get("crash")
        if not self.allow_crash or not crash or crash["point"] != point:
            return
        if crash["skip"] > 0:
            crash["skip"] -= 1
            self.save()
            return
        self.state["crash"] = None
        self.state["crashed"] = point
        self.save()
        os.kill(os.getpid(), signal.SIGKILL)


class FakeDeploymentTarget:
    """A frontend or backend with a deployment history and a traffic switch (`serving`)."""

    def __init__(self, world: FakeWorld, target: str) -> None:
        self.world, self.target = world, target

    def _state(self) -> State:
        state: State = self.world.state[self.target]
        return state

    async def plan(self, pin: str | None) -> DeploymentPlan:
        self.world.read(f"{self.target}.plan")
        state = self._state()
        history: list[str] = state["history"]
        if pin is not None and pin not in history:
            raise NotFoundError(f"deployment {pin} not found", provider=self.target)
        live = state["live"]
        earlier = history[: history.index(live)] if live in history else history
        if pin is None and not earlier:
            raise PermanentError("no earlier deployment to roll back to", provider=self.target)
        return DeploymentPlan.model_validate(
            {"from": live, "to": pin or earlier[-1], "serving": state["serving"]}
        )

    async def candidates(self, limit: int) -> list[Candidate]:
        """The history newest first (no times), marked as `plan(None)` would choose."""
        self.world.read(f"{self.target}.candidates")
        history: list[str] = self._state()["history"]
        live = self._state()["live"]
        earlier = history[: history.index(live)] if live in history else history
        default = earlier[-1] if earlier else None
        newest = list(reversed(history))
        shown = newest[:limit] + [d for d in newest[limit:] if d in (live, default)]
        return [Candidate(d, None, "READY", d == live, d == default) for d in shown]

    async def stop_traffic(self, key: str, plan: DeploymentPlan) -> StepResult:
        state = self._state()

        def act() -> str | None:
            if not state["serving"]:
                return None
            state["serving"] = False
            return f"stopped the {self.target}: it serves no traffic"

        return await self.world.op(f"{self.target}.stop_traffic", act, "traffic already stopped")

    async def rollback(self, to: str, key: str, journal: Journal) -> StepResult:
        state = self._state()

        def act() -> str | None:
            if state["live"] == to:
                return None
            state["live"] = to
            return f"{to} is live"

        result = await self.world.op(f"{self.target}.rollback", act, f"{to} was already live")
        return StepResult(result.message, {"deploymentId": to})

    async def resume_traffic(self, key: str, plan: DeploymentPlan, journal: Journal) -> StepResult:
        state = self._state()

        def act() -> str | None:
            if plan.serving is False or state["serving"]:
                return None
            state["serving"] = True
            return f"the {self.target} serves traffic again"

        return await self.world.op(f"{self.target}.resume_traffic", act, "traffic already on")


class FakeDatabase:
    """A database whose contents are a label, restored from named backups."""

    def __init__(self, world: FakeWorld, *, safety_backup: bool = True) -> None:
        self.world, self.dumps_first = world, safety_backup

    def _state(self) -> State:
        state: State = self.world.state["database"]
        return state

    async def plan(self, pin: str | None) -> DatabasePlan:
        self.world.read("database.plan")
        backups: dict[str, str] = self._state()["backups"]
        points = {n: p["taken_at"] for n, p in self._state().get("points", {}).items()}
        if pin in points:
            return DatabasePlan(backup=pin, taken_at=datetime.fromisoformat(points[pin]))
        if not backups:
            raise NotFoundError("no backups found", provider="database")
        name = pin or max(backups, key=lambda b: backups[b])
        if name not in backups:
            raise NotFoundError(f"backup {name} not found", provider="database")
        return DatabasePlan(
            backup=name,
            taken_at=datetime.fromisoformat(backups[name]),
            safety_backup=self.dumps_first,
        )

    async def candidates(self, limit: int) -> list[Candidate]:
        """The backups newest first, the newest the default."""
        self.world.read("database.candidates")
        backups: dict[str, str] = self._state()["backups"]
        newest = sorted(backups, key=lambda b: (backups[b], b), reverse=True)
        return [
            Candidate(b, datetime.fromisoformat(backups[b]), "backup", False, i == 0)
            for i, b in enumerate(newest[: max(limit, 1)])
        ]

    async def safety_backup(self, key: str) -> StepResult:
        state = self._state()
        name = f"safety/{key.replace('/', '-')}.dump"

        def act() -> str | None:
            if key in state["safety"]:
                return None
            state["safety"][key] = {"name": name, "contents": state["contents"]}
            return f"dumped the current database to {name}"

        result = await self.world.op("database.safety_backup", act, f"{name} already exists")
        return StepResult(result.message, {"safetyBackup": name})

    async def restore(self, backup: str, key: str) -> StepResult:
        state = self._state()

        def act() -> str | None:
            if state["restored"].get(key) == backup:
                return None
            state["contents"] = f"restored from {backup}"
            state["restored"][key] = backup
            return f"restored {backup}"

        return await self.world.op("database.restore", act, f"{backup} already restored")

    async def dump_point(self, point: str, key: str) -> PointDump:
        points: State = self._state().setdefault("points", {})
        name, now = f"restore-points/{point}.dump", datetime.now(UTC).isoformat()

        def act() -> str | None:
            if name in points and points[name]["key"] == key:
                return None
            if name in points:
                raise PermanentError(f"{name} was written by another restore point")
            points[name] = {"key": key, "contents": self._state()["contents"], "taken_at": now}
            return f"dumped the database to {name}"

        await self.world.op("database.dump_point", act, f"{name} already dumped")
        return PointDump(name, 1, datetime.fromisoformat(points[name]["taken_at"]))

    async def drop_point(self, point: str, key: str) -> bool:
        points: State = self._state().setdefault("points", {})
        backup = f"restore-points/{point}.dump"

        def act() -> str | None:
            if points.get(backup, {}).get("key") != key:
                return None
            del points[backup]
            return f"deleted {backup}"

        result = await self.world.op("database.drop_point", act, "not ours or gone")
        return result.message.startswith("deleted")


class FakeStorage:
    """A bucket whose point in time is a timestamp."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world

    async def plan(self, as_of: datetime, source: str | None = None) -> StoragePlan:
        self.world.read("storage.plan")
        return StoragePlan(as_of=as_of, objects_to_restore=3, objects_to_hide=1, source=source)

    async def snapshot(self, at: datetime, point: str, key: str) -> PointCopy:
        """A versioned bucket: the moment is the point."""
        self.world.read("storage.snapshot")
        return PointCopy(as_of=at)

    async def drop_snapshot(self, at: datetime, point: str, key: str) -> int:
        self.world.read("storage.drop_snapshot")
        return 0

    async def restore(self, as_of: datetime, key: str, source: str | None = None) -> StepResult:
        state: State = self.world.state["storage"]

        def act() -> str | None:
            if state["restored"].get(key) == as_of.isoformat():
                return None
            state["as_of"] = state["restored"][key] = as_of.isoformat()
            return f"restored objects as of {as_of.isoformat()}"

        return await self.world.op("storage.restore", act, "objects already restored")


class FakeNotifier:
    """A notification channel that keeps every notice it was sent, once per key."""

    def __init__(self, world: FakeWorld, name: str = "fake") -> None:
        self.world, self.name = world, name

    async def notify(self, notice: Notice, key: str, journal: Journal) -> StepResult:
        notices: list[dict[str, Any]] = self.world.state["notices"]
        thread = journal.recorded.get("thread")

        def act() -> str | None:
            if any(n["key"] == key for n in notices):
                return None
            notices.append(
                {
                    "key": key,
                    "kind": notice.kind,
                    "phase": notice.phase,
                    "thread": thread,
                    "contacts": list(notice.contacts) if notice.failed else [],
                    "traffic_stopped": list(notice.traffic_stopped),
                    "resume_hint": notice.resume_hint if notice.traffic_stopped else "",
                }
            )
            return f"told {self.name}"

        result = await self.world.op(f"notify.{self.name}", act, "already told")
        return StepResult(result.message, {"thread": thread or f"thread-{key}"})


class FakeVerifier:
    """Returns the check results written in the world's `checks`."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world

    async def verify(self) -> list[CheckResult]:
        self.world.read("verify")
        return [CheckResult.model_validate(c) for c in self.world.state["checks"]]


class FakeProviderFactory:
    """Builds fakes for whatever targets a policy defines."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world

    async def notifiers(self, policy: RollbackPolicy, secrets: SecretReader) -> list[Notifier]:
        return [FakeNotifier(self.world)]

    async def build(self, policy: RollbackPolicy, secrets: SecretReader) -> Providers:
        targets = policy.spec.targets
        world = self.world
        return Providers(
            frontend=FakeDeploymentTarget(world, "frontend") if targets.frontend else None,
            backend=FakeDeploymentTarget(world, "backend") if targets.backend else None,
            database=_database(world, targets.database),
            storage=FakeStorage(world) if targets.storage else None,
            notifiers=[FakeNotifier(world)],
            verifier=FakeVerifier(world),
        )


def _database(world: FakeWorld, layer: DatabaseTarget | None) -> FakeDatabase | None:
    """The fake stands for PostgreSQL, so it follows the postgres block's safety setting."""
    if layer is None or layer.postgres is None:
        return None
    return FakeDatabase(world, safety_backup=layer.postgres.safety_backup)
