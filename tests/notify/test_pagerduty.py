"""PagerDuty specifics: who gets paged, one alert per rollback, and routing-key refusals.

Claims: a person's own rollback pages nobody until it fails; every event of a rollback carries
one dedup key derived from its uid, so a trigger repeated after a crash folds into the same
alert and the later success still resolves it; the event carries what a responder needs; a
routing key PagerDuty refuses is an UnauthorizedError.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollback_operator.providers import errors
from rollback_operator.providers.notifiers import pagerduty
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.pagerduty_server import FakePagerDuty
from tests.notify.conftest import UID, PagerDutyHarness, copied, send, serve_pagerduty


@pytest.fixture
def world() -> Iterator[PagerDutyHarness]:
    yield from serve_pagerduty()


def fake(world: PagerDutyHarness) -> FakePagerDuty:
    assert isinstance(world.fake, FakePagerDuty)
    return world.fake


async def test_a_rollback_a_person_started_pages_nobody_until_it_fails(
    world: PagerDutyHarness,
) -> None:
    journal = MemoryJournal()
    started = await send(world.notifier(), "started", "failed", journal)
    assert started.message == "a person started this rollback; nobody paged"
    assert len(world.fake.log) == 0

    await send(world.notifier(), "finished", "failed", journal)

    [alert] = fake(world).alerts()
    assert (alert.state, alert.severity) == ("triggered", "critical")


async def test_every_event_of_a_rollback_carries_one_key_derived_from_its_uid(
    world: PagerDutyHarness,
) -> None:
    journal = MemoryJournal()
    await send(world.notifier(), "started", "policy", journal)
    await send(world.notifier(), "finished", "failed", journal)

    [alert] = fake(world).alerts()
    assert alert.dedup_key == pagerduty.dedup_key(UID) == journal.ids["dedup_key"]
    assert [e["payload"]["severity"] for e in alert.events] == ["error", "critical"]


class CrashAfterSend(MemoryJournal):
    """Saves the dedup key, then dies before saving that the event was accepted."""

    async def record(self, **ids: str) -> None:
        if any(name.startswith("posted") for name in ids):
            raise RuntimeError("operator killed")
        await super().record(**ids)


async def test_a_trigger_repeated_after_a_crash_folds_into_the_same_alert(
    world: PagerDutyHarness,
) -> None:
    crashed = CrashAfterSend()
    with pytest.raises(RuntimeError):
        await send(world.notifier(), "started", "policy", crashed)
    journal = copied(crashed)

    await send(world.notifier(), "started", "policy", journal)
    await send(world.notifier(), "finished", "policy", journal)

    [alert] = fake(world).alerts()
    assert [e["event_action"] for e in alert.events] == ["trigger", "trigger", "resolve"]
    assert alert.state == "resolved"


async def test_the_event_carries_what_a_responder_needs(world: PagerDutyHarness) -> None:
    await send(world.notifier(), "finished", "failed")

    [record] = world.fake.log.records
    payload = record.body["payload"]
    assert payload["summary"] == (
        "Rollback Failed: prod/high-error-rates-0101 (full: frontend, backend, database, "
        "storage) - deploy-previous (frontend) failed: Vercel refused the promote"
    )
    assert (payload["source"], payload["group"], payload["class"]) == (
        "prod/high-error-rates-0101", "prod", "rollback",
    )  # fmt: skip
    details = payload["custom_details"]
    assert details["moves"] == {"frontend": "dpl_new -> dpl_abc", "backend": "d-new -> 9f1c"}
    assert details["contacts"] == ["primary: Infrastructure <infrastructure@mindmate.app>"]
    assert details["report"] == "ConfigMap prod/high-error-rates-0101-report"
    assert record.body["routing_key"] == "***REDACTED***"


async def test_an_alert_for_a_rollback_that_left_traffic_stopped_leads_with_it(
    world: PagerDutyHarness,
) -> None:
    hint = "kubectl rollback resume-traffic high-error-rates-0101 -n prod"

    await send(world.notifier(), "finished", "failed", traffic_stopped=("frontend", "backend"),
               resume_hint=hint)  # fmt: skip

    [alert] = fake(world).alerts()
    payload = alert.events[-1]["payload"]
    assert payload["summary"].startswith("TRAFFIC STILL STOPPED (frontend, backend): Rollback")
    assert payload["custom_details"]["traffic_stopped"] == ["frontend", "backend"]
    assert payload["custom_details"]["resume"] == hint
    assert alert.state == "triggered"


@pytest.mark.parametrize(
    ("routing_key", "words"),
    [
        ("short-key", "Length of 'routing_key' is incorrect"),
        ("0123456789abcdef0123456789abcde-", "cannot contain non-alphanumeric"),
        ("0123456789abcdef0123456789abcdef", "Invalid routing key"),
    ],
)
async def test_a_routing_key_pagerduty_refuses_is_unauthorized(
    world: PagerDutyHarness, routing_key: str, words: str
) -> None:
    with pytest.raises(errors.UnauthorizedError, match=words) as raised:
        await send(world.build(routing_key), "started", "policy")

    assert routing_key not in str(raised.value)
    assert fake(world).alerts() == []


async def test_a_retry_after_is_honoured_when_pagerduty_sends_one() -> None:
    for world in serve_pagerduty(FakePagerDuty(rate_limit=1, retry_after_header=True)):
        await send(world.notifier(), "started", "policy")

        with pytest.raises(errors.RateLimitedError) as raised:
            await send(world.notifier(), "finished", "failed")

        assert raised.value.retry_after is not None
        assert raised.value.retry_after > 30
