"""The notifier contract's table: each notifier with its served fake, credentials and readings.

Why this module exists: the contract suite (apprise style) runs the same claims against Slack,
Statuspage and PagerDuty. Each `Harness` knows how to build its notifier against its fake,
which credential the fake refuses, which provider-shaped refusal to inject, and how to read
what people would have seen (`effects`) as short strings the table of expectations can name.
"""

from __future__ import annotations

import abc
import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from rollback_operator.api import policy
from rollback_operator.providers import http
from rollback_operator.providers.base import Journal, Notice, Notifier, StepResult
from rollback_operator.providers.notifiers import pagerduty, slack, statuspage
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.http_server import ErrorReply, FakeApi
from sandbox.fakes.pagerduty_server import FakePagerDuty
from sandbox.fakes.slack_server import FakeSlack
from sandbox.fakes.statuspage_server import FakeStatuspage
from tests.providers.conftest import VirtualTime, fast_options

PAGE = "page01"
POLICY_REASON = "rule api-error-rate: 0.071 above critical 0.05 for 5m"
FAILURE = "deploy-previous (frontend) failed: Vercel refused the promote"
UID = "5f0c8a1e-7d2b-4c3e-9a61-0d4be1f2a9c7"


@dataclass
class Harness(abc.ABC):
    """One notifier against its fake, as the contract suite sees it."""

    name: str
    fake: FakeApi
    url: str
    time: VirtualTime = field(default_factory=VirtualTime)

    sends_retry_after: bool = True
    write_route: str = "*"
    """Glob of the route keys of the calls that change what people see."""
    refusal: ErrorReply = field(default_factory=lambda: ErrorReply("refused"))
    refusal_text: str = ""

    def options(self) -> http.Options:
        return fast_options(self.time)

    def notifier(self) -> Notifier:
        return self.build(self.secret)

    @property
    @abc.abstractmethod
    def secret(self) -> str: ...

    @property
    @abc.abstractmethod
    def bad_secret(self) -> str: ...

    @abc.abstractmethod
    def build(self, secret: str) -> Notifier: ...

    @abc.abstractmethod
    def effects(self) -> list[str]:
        """What people would have seen so far, oldest first."""

    def writes(self) -> int:
        return self.fake.log.count_mutating(self.write_route)

    def leaks(self) -> list[str]:
        """Every string that must never show up in a result, an error or a log line."""
        return [self.secret, self.bad_secret]


@dataclass
class SlackHarness(Harness):
    path: str = ""

    @property
    def secret(self) -> str:
        return self.url + self.path

    @property
    def bad_secret(self) -> str:
        return f"{self.url}/services/T0000/B0000/not-the-right-secret"

    def build(self, secret: str) -> Notifier:
        return slack.SlackNotifier(secret, self.options())

    def leaks(self) -> list[str]:
        return [*super().leaks(), *(url.rsplit("/", 1)[1] for url in super().leaks())]

    def effects(self) -> list[str]:
        assert isinstance(self.fake, FakeSlack)
        return [_slack_effect(m) for m in self.fake.messages()]


@dataclass
class StatuspageHarness(Harness):
    key: str = "sp-api-key-0123456789abcdef"
    components: list[str] = field(default_factory=list)

    @property
    def secret(self) -> str:
        return self.key

    @property
    def bad_secret(self) -> str:
        return "sp-wrong-key-999999"

    def build(self, secret: str) -> Notifier:
        config = policy.Statuspage.model_validate(
            {"pageId": PAGE, "componentIds": self.components, "apiUrl": f"{self.url}/v1",
             "apiKeySecretRef": {"name": "statuspage", "key": "key"}}
        )  # fmt: skip
        return statuspage.StatuspageNotifier(config, secret, self.options())

    def effects(self) -> list[str]:
        assert isinstance(self.fake, FakeStatuspage)
        names = dict(zip(self.components, ("web", "api"), strict=False))
        return [
            " ".join([f"#{n} {update['status']}", *_moves(update, names)])
            for n, incident in enumerate(self.fake.incidents(PAGE), start=1)
            for update in incident.updates
        ]


@dataclass
class PagerDutyHarness(Harness):
    key: str = ""

    @property
    def secret(self) -> str:
        return self.key

    @property
    def bad_secret(self) -> str:
        return "0123456789abcdef0123456789abcdef"

    def build(self, secret: str) -> Notifier:
        config = policy.PagerDuty.model_validate(
            {"apiUrl": f"{self.url}/v2/enqueue",
             "routingKeySecretRef": {"name": "pagerduty", "key": "routing-key"}}
        )  # fmt: skip
        return pagerduty.PagerDutyNotifier(config, secret, self.options())

    def effects(self) -> list[str]:
        assert isinstance(self.fake, FakePagerDuty)
        sent = [r.body for r in self.fake.log.records if r.status == 202]
        events = [
            " ".join([e["event_action"], *([e["payload"]["severity"]] if "payload" in e else [])])
            for e in sent
        ]
        return events + [f"alert {a.state}" for a in self.fake.alerts()]


def _moves(update: dict[str, Any], names: dict[str, str]) -> list[str]:
    return [f"{names[c['code']]}={c['new_status']}" for c in update["affected_components"]]


def _slack_effect(payload: dict[str, object]) -> str:
    blocks = str(payload.get("blocks"))
    header = re.search(r"Rollback ([a-z ]+):", blocks)
    words = [f"posted: {header[1] if header else '?'}"]
    words += ["(automatic)"] if "automatic (policy)" in blocks else []
    words += ["with contacts"] if "*Contacts*" in blocks else []
    return " ".join(words)


NAMES = ("slack", "statuspage", "pagerduty")


@pytest.fixture(params=NAMES)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Each notifier in turn, against its own freshly served fake."""
    yield from serve(request.param)


def serve(name: str) -> Iterator[Harness]:
    """The harness of notifier `name` against a default fake, served while iterated."""
    servers: dict[str, Callable[[], Iterator[Harness]]] = {
        "slack": serve_slack,
        "statuspage": serve_statuspage,
        "pagerduty": serve_pagerduty,
    }
    yield from servers[name]()


def serve_slack(fake: FakeSlack | None = None) -> Iterator[SlackHarness]:
    fake = fake or FakeSlack()
    path = fake.add_webhook("#ops")
    with fake.serve() as server:
        yield SlackHarness("slack", fake, server.url, write_route="POST webhook:*", path=path,
                           refusal=ErrorReply("", 400, "invalid_payload"),
                           refusal_text="invalid_payload")  # fmt: skip


def serve_statuspage(fake: FakeStatuspage | None = None) -> Iterator[StatuspageHarness]:
    fake = fake or FakeStatuspage()
    components = fake.add_page(PAGE, ["web", "api"], key=StatuspageHarness.key)
    with fake.serve() as server:
        yield StatuspageHarness("statuspage", fake, server.url, write_route="P* /v1/pages/*",
                                components=components,
                                refusal=ErrorReply("Components are invalid", 422),
                                refusal_text="Components are invalid")  # fmt: skip


def serve_pagerduty(fake: FakePagerDuty | None = None) -> Iterator[PagerDutyHarness]:
    fake = fake or FakePagerDuty()
    key = fake.add_integration("mindmate")
    with fake.serve() as server:
        yield PagerDutyHarness("pagerduty", fake, server.url, key=key, sends_retry_after=False,
                               write_route="POST /v2/enqueue:*",
                               refusal=ErrorReply("'payload.source' is missing or blank"),
                               refusal_text="'payload.source' is missing or blank")  # fmt: skip


# ----- notices -----


def notice(kind: str, scenario: str, **changes: Any) -> Notice:
    """The `started` or `finished` notice of a scenario: succeeded, failed or policy."""
    finished, failed, policy_made = kind == "finished", scenario == "failed", scenario == "policy"
    full = scenario == "failed"
    told = Notice(
        kind="finished" if finished else "started",
        namespace="prod",
        name="mindmate-auto-x7k2p" if policy_made else "high-error-rates-0101",
        uid=UID,
        mode="full" if full else "quick",
        targets=("frontend", "backend", "database", "storage") if full else ("frontend", "backend"),
        reason=POLICY_REASON if policy_made else "High error rates",
        phase=("Failed" if failed else "Succeeded") if finished else "Running",
        summary=FAILURE if failed and finished else "",
        trigger="policy" if policy_made else "manual",
        version="v1.0.0",
        moves=(("frontend", "dpl_new -> dpl_abc"), ("backend", "d-new -> 9f1c")),
        report="high-error-rates-0101-report" if finished else "",
        contacts=("primary: Infrastructure <infrastructure@mindmate.app>",),
        failed=failed and finished,
    )
    return dataclasses.replace(told, **changes)


async def send(
    notifier: Notifier, kind: str, scenario: str, journal: Journal | None = None, **changes: Any
) -> StepResult:
    """Send one notice of `scenario` with its engine key (and a fresh journal unless given)."""
    told = notice(kind, scenario, **changes)
    return await notifier.notify(told, key(kind), MemoryJournal() if journal is None else journal)


def key(kind: str) -> str:
    return f"{UID}/notify-{kind}/-"


def copied(journal: MemoryJournal) -> MemoryJournal:
    """A new journal holding what `journal` saved, as the engine reloads it after a restart."""
    return journal_with(**journal.ids)


def journal_with(**ids: str) -> MemoryJournal:
    journal = MemoryJournal()
    journal.ids = dict(ids)
    return journal
