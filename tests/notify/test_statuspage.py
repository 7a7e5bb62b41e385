"""Statuspage specifics: one incident per rollback, found again after a crash, never doubled.

Claims: the incident is created once and closed by one PATCH; a crash between creating it and
recording its id, or an answer lost on the way back, never opens a second incident or repeats
an update; a failure leaves the incident open and the components as they were; an incident
somebody else opened or resolved is left alone; the page says nothing internal; Statuspage's
420 and its `error` body shape are understood.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from pydantic import ValidationError

from rollback_operator.api import policy
from rollback_operator.providers import errors
from rollback_operator.providers.notifiers import statuspage
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.http_server import ApiCall, ErrorReply, RateLimited
from sandbox.fakes.statuspage_server import FakeStatuspage
from tests.notify.conftest import (
    PAGE,
    UID,
    StatuspageHarness,
    journal_with,
    notice,
    send,
    serve_statuspage,
)
from tests.notify.test_contract import tell


@pytest.fixture
def world() -> Iterator[StatuspageHarness]:
    yield from serve_statuspage()


def fake(world: StatuspageHarness) -> FakeStatuspage:
    assert isinstance(world.fake, FakeStatuspage)
    return world.fake


def calls(world: StatuspageHarness, method: str) -> int:
    return len([r for r in world.fake.log.records if r.method == method])


# ----- lifecycle -----


async def test_the_incident_is_created_once_and_closed_by_one_patch(
    world: StatuspageHarness,
) -> None:
    await tell(world.notifier(), MemoryJournal(), "succeeded")

    [incident] = fake(world).incidents(PAGE)
    assert (calls(world, "POST"), calls(world, "PATCH")) == (1, 1)
    assert incident.status == "resolved"
    assert incident.resolved_at is not None
    assert incident.impact_override == "major"  # the runbook's "High"
    assert incident.metadata == {"rollback_operator": {"uid": UID}}
    assert {fake(world).component_status(PAGE, c) for c in world.components} == {"operational"}


async def test_the_incident_opens_as_the_runbooks_status_page_update_by_default(
    world: StatuspageHarness,
) -> None:
    await send(world.notifier(), "started", "succeeded", MemoryJournal())

    [incident] = fake(world).incidents(PAGE)
    assert incident.name == "Service Degradation"
    assert (incident.status, incident.impact_override) == ("investigating", "major")
    assert incident.updates[0]["body"].startswith(
        "We're currently experiencing issues and have initiated a rollback to restore service."
    )


async def test_the_incident_says_what_the_policy_configures(world: StatuspageHarness) -> None:
    wanted = {"title": "Checkout is slow", "status": "identified", "impact": "minor",
              "message": "A release slowed checkout down; we are rolling it back."}  # fmt: skip
    config = policy.Statuspage.model_validate(
        {"pageId": PAGE, "componentIds": world.components, "apiUrl": f"{world.url}/v1",
         "apiKeySecretRef": {"name": "statuspage", "key": "key"}, "incident": wanted}
    )  # fmt: skip
    notifier = statuspage.StatuspageNotifier(config, world.secret, world.options())

    await send(notifier, "started", "succeeded", MemoryJournal())

    [incident] = fake(world).incidents(PAGE)
    assert incident.name == wanted["title"]
    assert (incident.status, incident.impact_override) == ("identified", "minor")
    assert incident.updates[0]["body"].startswith(wanted["message"])
    assert f"Reference: rollback {UID}" in incident.updates[0]["body"]  # found again after a crash


@pytest.mark.parametrize(
    "incident",
    [{"status": "resolved"}, {"impact": "high"}, {"title": ""}, {"message": "x" * 2001}],
)
def test_an_incident_the_page_cannot_show_is_refused(incident: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="incident"):
        policy.Statuspage.model_validate(
            {"pageId": PAGE, "apiKeySecretRef": {"name": "s", "key": "k"}, "incident": incident}
        )


async def test_the_page_shows_nothing_internal(world: StatuspageHarness) -> None:
    await tell(world.notifier(), MemoryJournal(), "failed")

    [incident] = fake(world).incidents(PAGE)
    public = " ".join([incident.name, *(u["body"] for u in incident.updates)])
    for internal in ("prod", "high-error-rates", "High error rates", "Infrastructure", "report"):
        assert internal not in public
    assert "frontend, backend, database and storage" in public


async def test_a_failure_leaves_the_incident_open_and_the_components_down(
    world: StatuspageHarness,
) -> None:
    await tell(world.notifier(), MemoryJournal(), "failed")

    [incident] = fake(world).incidents(PAGE)
    assert incident.status == "identified"
    assert incident.impact_override == "major"
    assert incident.updates[-1]["body"].startswith("The rollback of the frontend, backend")
    assert {fake(world).component_status(PAGE, c) for c in world.components} == {"major_outage"}


@pytest.mark.parametrize("scenario", ["failed", "succeeded"])
async def test_an_incident_is_never_resolved_while_traffic_is_stopped(
    world: StatuspageHarness, scenario: str
) -> None:
    journal = MemoryJournal()
    await send(world.notifier(), "started", scenario, journal)

    await send(world.notifier(), "finished", scenario, journal,
               traffic_stopped=("frontend", "backend"))  # fmt: skip

    [incident] = fake(world).incidents(PAGE)
    assert incident.status == "identified"
    assert "The frontend and backend remain offline" in incident.updates[-1]["body"]
    assert "kubectl" not in incident.updates[-1]["body"]


# ----- crashes and lost answers -----


class CrashBeforeRecord(MemoryJournal):
    """The operator dies after Statuspage created the incident, before its id was saved."""

    async def record(self, **ids: str) -> None:
        raise RuntimeError("operator killed")


async def test_a_crash_between_create_and_record_does_not_open_a_second_incident(
    world: StatuspageHarness,
) -> None:
    with pytest.raises(RuntimeError):
        await send(world.notifier(), "started", "policy", CrashBeforeRecord())
    journal = MemoryJournal()

    adopted = await send(world.notifier(), "started", "policy", journal)
    await send(world.notifier(), "finished", "policy", journal)

    [incident] = fake(world).incidents(PAGE)
    assert adopted.message.startswith(f"adopted incident {incident.id}")
    assert journal.ids["incident"] == incident.id
    assert calls(world, "POST") == 1
    assert incident.status == "resolved"


class LosingFake(FakeStatuspage):
    """Acts on the first call of `method`, then answers 502 as if a proxy lost the answer."""

    def __init__(self, method: str) -> None:
        super().__init__()
        self.lose = method

    def dispatch(self, call: ApiCall) -> web.Response:
        answer = super().dispatch(call)
        if call.method != self.lose:
            return answer
        self.lose = ""
        return web.json_response({"message": "Bad gateway"}, status=502)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_write_whose_answer_was_lost_is_looked_up_not_repeated(method: str) -> None:
    for world in serve_statuspage(LosingFake(method)):
        await tell(world.notifier(), MemoryJournal(), "succeeded")

        [incident] = fake(world).incidents(PAGE)
        assert [u["status"] for u in incident.updates] == ["investigating", "resolved"]
        assert calls(world, method) == 1


async def test_another_rollbacks_incident_is_not_adopted(world: StatuspageHarness) -> None:
    other = notice("started", "policy", uid="0000-other-rollback")
    await world.notifier().notify(other, "other/notify-started/-", MemoryJournal())

    await send(world.notifier(), "started", "policy")

    assert len(fake(world).incidents(PAGE)) == 2


# ----- finished without started -----


async def test_a_failure_nobody_announced_opens_an_incident(world: StatuspageHarness) -> None:
    journal = MemoryJournal()
    result = await send(world.notifier(), "finished", "failed", journal)

    [incident] = fake(world).incidents(PAGE)
    assert incident.status == "identified"
    assert result.external_ids["incident"] == journal.ids["incident"] == incident.id


async def test_a_success_nobody_announced_changes_nothing(world: StatuspageHarness) -> None:
    await send(world.notifier(), "finished", "succeeded")

    assert fake(world).incidents(PAGE) == []
    assert calls(world, "POST") + calls(world, "PATCH") == 0


async def test_an_incident_a_person_resolved_is_left_alone(world: StatuspageHarness) -> None:
    journal = MemoryJournal()
    await send(world.notifier(), "started", "failed", journal)
    with fake(world).lock:
        fake(world).incidents(PAGE)[0].status = "resolved"

    result = await send(world.notifier(), "finished", "failed", journal)

    assert result.message.endswith("is already resolved")
    assert calls(world, "PATCH") == 0


# ----- Statuspage's wire quirks -----


async def test_the_old_420_rate_limit_is_waited_out_like_a_429() -> None:
    for world in serve_statuspage(FakeStatuspage(rate_limit_status=420)):
        world.fake.inject(RateLimited(retry_after=2), times=1)
        await send(world.notifier(), "started", "policy")
        assert world.fake.log.records[0].status == 420
        assert world.time.sleeps[0] >= 2.0

        world.fake.inject(RateLimited(retry_after=2), times=None)
        with pytest.raises(errors.RateLimitedError) as raised:
            await send(world.notifier(), "finished", "policy")
        assert "HTTP 420" in str(raised.value)
        assert raised.value.retry_after == 2.0


async def test_an_error_text_under_error_is_read_like_one_under_message() -> None:
    for world in serve_statuspage(FakeStatuspage(error_key="error")):
        world.fake.inject(ErrorReply("Incident name is too long", 422), route="POST *")

        with pytest.raises(errors.PermanentError, match="Incident name is too long"):
            await send(world.notifier(), "started", "policy")


async def test_a_long_retry_after_goes_up_at_once_for_the_step_to_wait() -> None:
    for world in serve_statuspage(FakeStatuspage(rate_limit=2)):
        with pytest.raises(errors.RateLimitedError) as raised:
            await tell(world.notifier(), MemoryJournal(), "succeeded")

        assert raised.value.retry_after is not None
        assert raised.value.retry_after > 30
        assert [r.status for r in world.fake.log.records] == [200, 201, 429]
        assert world.time.sleeps == []


async def test_an_incident_a_person_deleted_is_opened_again_only_for_a_failure(
    world: StatuspageHarness,
) -> None:
    journal = journal_with(incident="inc-deleted")

    quiet = await send(world.notifier(), "finished", "succeeded", journal)
    await send(world.notifier(), "finished", "failed", journal)

    assert quiet.message.startswith("no incident is open")
    [incident] = fake(world).incidents(PAGE)
    assert journal.ids["incident"] == incident.id != "inc-deleted"
