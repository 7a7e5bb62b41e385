"""What a contract test may ask of a provider's world, one Protocol per provider Protocol.

Why this module exists: a contract claim (`test_rollback_twice_with_the_same_key_has_one_effect`)
must read the same for the in-memory fake and for a real adapter on its server. Each row of the
tables in `tests/contracts/conftest.py` opens a world that implements one of these Protocols: it
builds the implementation under test, seeds state the provider's own way (a newer deployment
that failed, a backup of today's data) and observes effects where the provider keeps them (the
fake's counters, the fake server's request log, the database's rows, the bucket's versions).

Where the implementations word the same outcome differently ("already serves" against "was
already live"), the world carries its provider's words, so the claim still checks the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from rollback_operator.api.rollback import DeploymentPlan
from rollback_operator.providers.base import Database, DeploymentTarget, Storage
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.http_server import FakeApi
from tests.providers.conftest import VirtualTime


@dataclass(frozen=True)
class DeploymentWords:
    """How an implementation says each outcome (a fragment of the message)."""

    already_serving: str  # rollback to what serves already
    already_stopped: str  # stop_traffic when no traffic flows
    missing_pin: str  # plan(pin) for an id that does not exist; `{pin}` is the pin


class DeploymentWorld(Protocol):
    """A frontend or backend with an older good deployment (`old`) and the live one (`live`),
    serving traffic."""

    @property
    def old(self) -> str:
        """An older deployment that served before `live`: what `plan(None)` goes back to."""
        ...

    @property
    def live(self) -> str:
        """The deployment serving when the world was seeded."""
        ...

    @property
    def missing(self) -> str:
        """An id no deployment has."""
        ...

    @property
    def journal(self) -> MemoryJournal:
        """The rollback step's journal, kept across restarts."""
        ...

    @property
    def words(self) -> DeploymentWords: ...

    def target(self, *, page_size: int | None = None) -> DeploymentTarget:
        """A new implementation, as a restarted operator builds it (`page_size`: list in pages
        of this size, where the provider pages)."""
        ...

    def add_failed(self) -> str:
        """A deployment newer than all others that failed and never served; its id."""
        ...

    def solo(self) -> tuple[DeploymentTarget, str]:
        """A target with a single deployment (live), and that deployment's id."""
        ...

    def serving(self) -> str | None:
        """The deployment that serves production now."""
        ...

    def serves_build_of(self, deployment: str) -> bool:
        """What serves now is `deployment`, or a redeploy of its build."""
        ...

    def serves_traffic(self) -> bool:
        """Traffic flows as it did when the world was seeded."""
        ...

    def traffic_stopped(self) -> bool:
        """No traffic flows (paused, or no replicas)."""
        ...

    def stop_elsewhere(self) -> None:
        """Someone other than the operator stops the traffic."""
        ...

    def plan_says_stopped(self, plan: DeploymentPlan) -> bool:
        """`plan` recorded traffic as stopped, so resuming must leave it stopped."""
        ...

    def mutations(self) -> int:
        """How many calls changed the provider so far."""
        ...


@dataclass(frozen=True)
class PolicyBlock:
    """A target block of a RollbackPolicy naming a served world, and the Secret it reads."""

    slot: str  # "frontend" or "backend"
    block: dict[str, Any]  # {"vercel": {...}} or {"railway": {...}}
    secret: str  # the Secret's name; its key is "token"
    token: str


class HostedWorld(DeploymentWorld, Protocol):
    """A deployment world whose implementation is an adapter talking HTTP to a fake server."""

    @property
    def fake(self) -> FakeApi:
        """The fake server: its faults and its request log."""
        ...

    @property
    def time(self) -> VirtualTime:
        """The clock the adapter's retries and polls sleep on."""
        ...

    @property
    def bad_token(self) -> str:
        """A token the fake refuses."""
        ...

    @property
    def serving_plan(self) -> DeploymentPlan:
        """A plan recorded while traffic flowed as seeded."""
        ...

    def target(self, token: str | None = None, *, page_size: int | None = None) -> DeploymentTarget:
        """The adapter, with the world's token unless `token` is given."""
        ...

    def secrets(self) -> list[str]:
        """Every token of the world, good or bad: none may appear in an error or a log."""
        ...

    def policy_block(self) -> PolicyBlock:
        """How a policy names this world's target."""
        ...


@dataclass(frozen=True)
class DatabaseWords:
    """How an implementation says each outcome (a fragment of the message)."""

    no_backups: str  # plan(None) with no backup at all
    already_restored: str  # restore again with the same key
    already_dumped: str  # safety_backup again with the same key


class DatabaseWorld(Protocol):
    """A database with data in it and somewhere its backups are kept."""

    @property
    def words(self) -> DatabaseWords: ...

    def target(self) -> Database:
        """A new implementation, as a restarted operator builds it."""
        ...

    def write(self, note: str) -> None:
        """The application writes: the data is now `note`."""
        ...

    def back_up(self, day: date) -> str:
        """A backup of the data as it is now, dated `day` as backup tools date them; its name."""
        ...

    def holds(self, backup: str) -> bool:
        """The data now is what `backup` holds."""
        ...

    def data(self) -> object:
        """The data now, to compare with later."""
        ...

    def stored(self) -> list[str]:
        """Every backup and safety dump kept."""
        ...

    def safety_dumps(self) -> list[str]:
        """The safety dumps kept."""
        ...


class StorageWorld(Protocol):
    """A bucket whose objects changed after `as_of`."""

    @property
    def as_of(self) -> datetime:
        """A time before the objects changed."""
        ...

    def target(self) -> Storage:
        """A new implementation, as a restarted operator builds it."""
        ...

    def is_as_of(self) -> bool:
        """Every object is as it was at `as_of`."""
        ...

    def writes(self) -> int:
        """How many changes the implementation made to the objects so far."""
        ...
