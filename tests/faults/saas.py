"""The SaaS providers of the fault matrix (Vercel, Railway, Slack, Statuspage, PagerDuty) as
`Subject`s: each knows its operations, how to inject a fault, and how to build its adapter with
the right, a wrong, or an unreachable endpoint.

Why this module exists: one table-driven test walks provider x operation x fault; the
provider-specific set-up (seeding the stateful fake, the plan a traffic operation needs, the
notice a notifier sends) lives here, reusing the seeds of sandbox/fakes/saas.py and the notifier
harnesses of tests/notify/conftest.py. Waiting is virtual (`VirtualTime`); timeouts are real
and short (`tests.providers.conftest.fast_options`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, cast

from rollback_operator.api.rollback import DeploymentPlan
from rollback_operator.api.targets import RailwayTarget, VercelTarget
from rollback_operator.providers.base import Notifier
from rollback_operator.providers.deployments import railway, vercel
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.http_server import Dropped, FakeApi, RateLimited, ServerError, Slow
from sandbox.fakes.saas import RAILWAY_TOKEN, VERCEL_TOKEN, Saas, serving
from sandbox.services import free_port
from tests.notify.conftest import Harness, key, notice, serve
from tests.providers.conftest import READ_TIMEOUT, VirtualTime, fast_options

Operation = Callable[[], Awaitable[Any]]

FAULTS: dict[str, RateLimited | ServerError | Slow | Dropped] = {
    "429": RateLimited(retry_after=1),
    "500": ServerError(500),
    "timeout": Slow(READ_TIMEOUT * 8),
    "dropped": Dropped(),
}
"""The faults a fake can inject; `unreachable` and `bad-credentials` are made by the build."""

OPERATIONS = ("plan", "stop traffic", "rollback", "resume traffic")
SERVING = DeploymentPlan.model_validate({"from": "a", "to": "b", "serving": True})


def closed_url() -> str:
    """An http URL on a loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class Subject:
    """One provider's adapter against its fake, as the fault matrix drives it."""

    provider: str
    fake: FakeApi
    secrets: list[str]
    build: Callable[[str, str], dict[str, Operation]]
    """(credential, base URL) -> the operations, by name, of an adapter built with them."""
    good: str
    bad: str
    """A credential the fake refuses."""
    url: str
    names: dict[str, tuple[str, ...]]
    """For each operation, the words (any of) its error message must contain."""
    time: VirtualTime = field(default_factory=VirtualTime)
    prepare: Callable[[str], Awaitable[None]] | None = None
    """Set the world up for an operation (stop traffic before `resume traffic`)."""

    def operations(
        self, *, credential: str | None = None, url: str | None = None
    ) -> dict[str, Operation]:
        return self.build(credential or self.good, url or self.url)

    def inject(self, fault: str, times: int | None) -> None:
        self.fake.inject(FAULTS[fault], times=times)


@contextmanager
def subject(provider: str) -> Iterator[Subject]:
    """The subject of `provider`, its fake served while the block runs."""
    makers = {"vercel": _vercel, "railway": _railway}
    if provider in makers:
        with serving() as saas:
            yield makers[provider](saas)
    else:
        with served(provider) as harness:
            yield _notifier(harness)


@contextmanager
def served(name: str) -> Iterator[Harness]:
    """The notifier harness of `name` (tests/notify/conftest.py), its fake served meanwhile."""
    harness = cast("Generator[Harness, None, None]", serve(name))
    try:
        yield next(harness)
    finally:
        harness.close()


def _vercel(saas: Saas) -> Subject:
    time, journal = VirtualTime(), MemoryJournal()
    key_ = "uid-1/instant-rollback/frontend"

    def build(token: str, url: str) -> dict[str, Operation]:
        config = VercelTarget.model_validate(
            {"projectId": saas.project, "apiUrl": url,
             "tokenSecretRef": {"name": "vercel", "key": "token"}}
        )  # fmt: skip
        paced = replace(vercel.PACING, poll_interval=0.01, deadline=5.0)
        target = vercel.VercelProject(config, token, fast_options(time), paced)
        return {
            "plan": lambda: target.plan(None),
            "stop traffic": lambda: target.stop_traffic(key_, SERVING),
            "rollback": lambda: target.rollback(saas.old, key_, journal),
            "resume traffic": lambda: target.resume_traffic(key_, SERVING, journal),
        }

    async def prepare(operation: str) -> None:
        if operation == "resume traffic":
            saas.vercel.project(saas.project).paused = True

    names: dict[str, tuple[str, ...]] = {op: (op,) for op in OPERATIONS}
    bad = "vercel-wrong-token-4e11"
    return Subject("vercel", saas.vercel, [VERCEL_TOKEN, bad], build, VERCEL_TOKEN, bad,
                   saas.vercel_url, names, time, prepare)  # fmt: skip


def _railway(saas: Saas) -> Subject:
    time, journal = VirtualTime(), MemoryJournal()
    key_ = "uid-1/instant-rollback/backend"

    def build(token: str, url: str) -> dict[str, Operation]:
        config = RailwayTarget.model_validate(
            {"projectId": saas.railway_project, "environmentId": saas.env,
             "serviceId": saas.service, "apiUrl": f"{url}/graphql/v2",
             "tokenSecretRef": {"name": "railway", "key": "token"}}
        )  # fmt: skip
        paced = replace(railway.PACING, poll_interval=0.01, deadline=5.0)
        target = railway.RailwayService(config, token, fast_options(time), paced)
        return {
            "plan": lambda: target.plan(None),
            "stop traffic": lambda: target.stop_traffic(key_, SERVING),
            "rollback": lambda: target.rollback(saas.railway_old, key_, journal),
            "resume traffic": lambda: target.resume_traffic(key_, SERVING, journal),
        }

    async def prepare(operation: str) -> None:
        if operation == "resume traffic":
            with saas.railway.lock:
                saas.railway.deployment(saas.railway_live).stopped = True

    names: dict[str, tuple[str, ...]] = {op: (op,) for op in OPERATIONS}
    bad = "railway-wrong-token-0c7d"
    return Subject("railway", saas.railway, [RAILWAY_TOKEN, bad], build, RAILWAY_TOKEN, bad,
                   saas.railway_url, names, time, prepare)  # fmt: skip


NOTIFIER_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "slack": {"notify started": ("notify",), "notify finished": ("notify",)},
    "statuspage": {"notify started": ("open incident", "find incident"),
                   "notify finished": ("update incident", "read incident", "find incident")},
    "pagerduty": {"notify started": ("send trigger",), "notify finished": ("send resolve",)},
}  # fmt: skip


def _notifier(harness: Harness) -> Subject:
    """A notifier: `notify finished` follows a `started` sent before the fault."""
    journal = MemoryJournal()

    def build(secret: str, url: str) -> dict[str, Operation]:
        made = dataclasses.replace(harness, url=url) if url != harness.url else harness
        if harness.name == "slack" and url != harness.url:
            secret = secret.replace(harness.url, url)
        notifier: Notifier = made.build(secret)
        return {
            "notify started": lambda: notifier.notify(
                notice("started", "policy"), key("started"), journal
            ),
            "notify finished": lambda: notifier.notify(
                notice("finished", "policy"), key("finished"), journal
            ),
        }

    async def prepare(operation: str) -> None:
        if operation == "notify finished":
            await build(harness.secret, harness.url)["notify started"]()

    return Subject(harness.name, harness.fake, harness.leaks(), build, harness.secret,
                   harness.bad_secret, harness.url, NOTIFIER_NAMES[harness.name], harness.time,
                   prepare)  # fmt: skip
