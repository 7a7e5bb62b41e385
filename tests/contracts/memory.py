"""The in-memory fakes (`sandbox.fakes.memory`) as worlds of the contract suite.

Why this module exists: the engine and operator tests trust these fakes to behave like the
adapters; the contract suite holds them to the same claims. Each world is a fresh `FakeWorld`;
effects are read from its state and from its count of calls that changed something.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from rollback_operator.api.rollback import DeploymentPlan
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.memory import (
    FakeDatabase,
    FakeDeploymentTarget,
    FakeStorage,
    FakeWorld,
    State,
    default_state,
)
from tests.contracts.worlds import DatabaseWords, DeploymentWords

DEPLOYMENT_WORDS = DeploymentWords(
    already_serving="already live",
    already_stopped="traffic already stopped",
    missing_pin="deployment {pin} not found",
)


@dataclass
class MemoryDeploymentWorld:
    """The fake frontend or backend; its traffic is a switch (`serving`)."""

    slot: str  # "frontend" or "backend"
    world: FakeWorld = field(default_factory=FakeWorld)
    journal: MemoryJournal = field(default_factory=MemoryJournal)
    missing: str = "dpl_missing"
    words: DeploymentWords = DEPLOYMENT_WORDS

    old: str = field(init=False)
    live: str = field(init=False)

    def __post_init__(self) -> None:
        self.old, self.live = self.state["history"][0], self.state["live"]

    @property
    def state(self) -> State:
        state: State = self.world.state[self.slot]
        return state

    def target(self, *, page_size: int | None = None) -> FakeDeploymentTarget:
        return FakeDeploymentTarget(self.world, self.slot)

    def add_failed(self) -> str:
        history: list[str] = self.state["history"]
        history.append(f"{self.slot}-failed-{len(history)}")
        return history[-1]

    def solo(self) -> tuple[FakeDeploymentTarget, str]:
        state = copy.deepcopy(self.world.state)
        state[self.slot] |= {"history": ["only"], "live": "only"}
        return FakeDeploymentTarget(FakeWorld(state), self.slot), "only"

    def serving(self) -> str | None:
        return str(self.state["live"])

    def serves_build_of(self, deployment: str) -> bool:
        return self.serving() == deployment

    def serves_traffic(self) -> bool:
        return self.state["serving"] is True

    def traffic_stopped(self) -> bool:
        return self.state["serving"] is False

    def stop_elsewhere(self) -> None:
        self.state["serving"] = False

    def plan_says_stopped(self, plan: DeploymentPlan) -> bool:
        return plan.serving is False

    def mutations(self) -> int:
        return sum(self.world.state["calls"].values())


DATABASE_WORDS = DatabaseWords(
    no_backups="no backups found",
    already_restored="already restored",
    already_dumped="already exists",
)


@dataclass
class MemoryDatabaseWorld:
    """The fake database: its data is a label, its backups a name and a time each."""

    world: FakeWorld = field(default_factory=lambda: FakeWorld(_without_backups()))
    words: DatabaseWords = DATABASE_WORDS

    @property
    def state(self) -> State:
        state: State = self.world.state["database"]
        return state

    def target(self) -> FakeDatabase:
        return FakeDatabase(self.world)

    def write(self, note: str) -> None:
        self.state["contents"] = note

    def back_up(self, day: date) -> str:
        name = f"backup_{day:%Y%m%d}.dump"
        self.state["backups"][name] = datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()
        return name

    def holds(self, backup: str) -> bool:
        return bool(self.state["contents"] == f"restored from {backup}")

    def data(self) -> object:
        return self.state["contents"]

    def stored(self) -> list[str]:
        return sorted(self.state["backups"]) + self.safety_dumps()

    def safety_dumps(self) -> list[str]:
        return sorted(dump["name"] for dump in self.state["safety"].values())


def _without_backups() -> State:
    state = default_state()
    state["database"]["backups"] = {}
    return state


@dataclass
class MemoryStorageWorld:
    """The fake bucket: its point in time is a timestamp."""

    world: FakeWorld = field(default_factory=FakeWorld)
    as_of: datetime = datetime(2024, 1, 1, 12, tzinfo=UTC)

    def target(self) -> FakeStorage:
        return FakeStorage(self.world)

    def is_as_of(self) -> bool:
        return bool(self.world.state["storage"]["as_of"] == self.as_of.isoformat())

    def writes(self) -> int:
        return self.world.calls("storage.restore")
