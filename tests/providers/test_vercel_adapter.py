"""The Vercel adapter against the stateful Vercel fake, over real HTTP: what only Vercel does.

What every deployment target does (plan, rollback once per key, stop and resume traffic,
candidates, the fault matrix, the factory) is claimed in `tests/contracts`. Claims here: it
plans from Vercel's own history, skipping what never served production and paging with `until`,
and refuses pins Vercel would refuse; it rolls back by instant rollback or promote and waits for
the alias job, adopting a job already running; a deploy that took over production fails the
step, even when Vercel stamps the job ahead of the deployments' clock; every call stays in the
team; it records what it paused; and the HTTP layer's Vercel-facing rules (401, Retry-After,
redirects).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from rollback_operator.providers import errors, http, http_failures
from rollback_operator.providers.deployments import vercel
from sandbox.fakes.host import MemoryJournal
from tests.contracts.hosted import HOUR_MS, TEAM, VERCEL_BAD_TOKEN, VercelWorld, vercel_world
from tests.providers.conftest import FAULTS, VirtualTime, fast_options

KEY = "uid-1/instant-rollback/frontend"
World = VercelWorld


@pytest.fixture
def world(request: pytest.FixtureRequest, virtual_time: VirtualTime) -> Iterator[World]:
    with vercel_world(virtual_time, **getattr(request, "param", {})) as served:
        yield served


def with_options(**options: Any) -> pytest.MarkDecorator:
    label = ",".join(f"{key}={value}" for key, value in options.items())
    return pytest.mark.parametrize("world", [options], indirect=True, ids=[label])


# ----- plan -----


async def test_plan_targets_the_newest_earlier_deployment_that_served_production(
    world: World,
) -> None:
    base = world.fake.deployment(world.old).created_at
    world.deploy(state="ERROR", created_at=base + 1, live=False)
    world.deploy(state="CANCELED", created_at=base + 2, live=False)
    world.deploy(target=None, created_at=base + 3)  # a preview
    world.deploy(state="ERROR", created_at=base + 2 * HOUR_MS, live=False)  # newer than live

    plan = await world.target().plan(None)

    assert (plan.from_, plan.to) == (world.live, world.old)


async def test_plan_follows_until_pagination_past_failed_deployments(world: World) -> None:
    base = world.fake.deployment(world.old).created_at
    for n in range(5):
        world.deploy(state="ERROR", created_at=base + 1 + n, live=False)

    plan = await world.target(page_size=2).plan(None)

    assert plan.to == world.old
    pages = world.fake.log.matching("GET /v6/deployments")
    assert len(pages) == 4
    assert "until" not in pages[0].query
    assert all(p.query["until"].isdigit() for p in pages[1:])


@pytest.mark.parametrize(
    ("make_pin", "problem"),
    [
        pytest.param(lambda w: w.deploy(state="ERROR", live=False), "not READY", id="not-ready"),
        pytest.param(lambda w: w.deploy(target=None), "not a production", id="preview"),
        pytest.param(
            lambda w: w.fake.add_deployment(w.fake.add_project("other", team_id=TEAM)),
            "belongs to project",
            id="other-project",
        ),
    ],
)
async def test_plan_refuses_a_pin_it_cannot_roll_back_to(
    world: World, make_pin: Callable[[World], str], problem: str
) -> None:
    pin = make_pin(world)

    with pytest.raises(errors.PermanentError, match=problem) as raised:
        await world.target().plan(pin)

    assert pin in str(raised.value)


async def test_every_call_acts_for_the_team(world: World) -> None:
    target = world.target()

    await target.plan(None)
    await target.plan(world.old)
    await target.candidates(1)

    assert all(r.query.get("teamId") == TEAM for r in world.fake.log.records)


# ----- rollback -----


async def test_rollback_polls_the_alias_job_and_asks_for_a_promote_afterwards(
    world: World,
) -> None:
    result = await world.target().rollback(world.old, KEY, world.journal)

    assert len(world.fake.log.matching("GET /v9/projects/*")) >= 3  # read, then polls
    assert result.external_ids["method"] == "rollback"
    assert result.external_ids["jobId"].startswith("rollback-")
    assert result.external_ids["followUp"] == vercel.FOLLOW_UP
    assert "promote" in result.message


@pytest.mark.parametrize(
    ("world", "refusal"),
    [
        pytest.param({}, "never-served-production", id="ineligible-400"),
        pytest.param({"hobby_plan": True}, "hobby-not-previous", id="hobby-402"),
    ],
    indirect=["world"],
)
async def test_rollback_falls_back_to_promote_when_instant_rollback_is_refused(
    world: World, refusal: str
) -> None:
    base = world.fake.deployment(world.old).created_at
    if refusal == "never-served-production":
        to = world.deploy(created_at=base + 1, live=False)
    else:
        to = world.old
        world.deploy(created_at=base + 1)  # now `old` is not the immediately previous one
        world.deploy(created_at=base + 2)

    result = await world.target().rollback(to, KEY, world.journal)

    assert world.fake.production_deployment(world.project) == to
    assert result.external_ids["method"] == "promote"
    assert "followUp" not in result.external_ids
    assert world.mutations("POST /v1/projects/*/rollback/*") == 1
    assert world.mutations("POST /v10/projects/*/promote/*") == 1


@with_options(job_outcome="failed")
async def test_a_failed_job_ends_in_a_permanent_error_naming_the_stuck_alias(
    world: World,
) -> None:
    with pytest.raises(
        errors.PermanentError, match=r"failed; aliases not moved: web\.example\.com"
    ):
        await world.target().rollback(world.old, KEY, world.journal)


@with_options(job_polls=10_000)
async def test_a_job_past_its_deadline_is_retryable_and_the_retry_adopts_it(world: World) -> None:
    target = world.target(deadline=0.05)

    with pytest.raises(errors.RetryableError, match="still in-progress"):
        await target.rollback(world.old, KEY, world.journal)
    world.fake.complete_job(world.project)
    result = await target.rollback(world.old, KEY, world.journal)

    assert world.mutations() == 1
    assert world.fake.production_deployment(world.project) == world.old
    assert "already" in result.message


@with_options(job_polls=10_000)
async def test_a_job_already_running_to_the_target_is_awaited_not_requested_again(
    world: World,
) -> None:
    with pytest.raises(errors.RetryableError):
        await world.target(deadline=0.05).rollback(world.old, KEY, world.journal)
    job = world.fake.project(world.project).job
    assert job is not None
    world.fake.job_polls = job.polls + 2  # still running at the next read, done soon after
    after_restart = world.target()

    result = await after_restart.rollback(world.old, KEY, world.journal)

    assert result.external_ids["method"] == "rollback"
    assert world.fake.production_deployment(world.project) == world.old
    assert world.mutations() == 1


@with_options(job_polls=10_000)
async def test_a_job_running_to_another_target_makes_the_rollback_retryable(
    world: World,
) -> None:
    other = world.deploy(created_at=world.fake.deployment(world.old).created_at - 1, live=False)
    with pytest.raises(errors.RetryableError):
        await world.target(deadline=0.05).rollback(other, "someone-else", MemoryJournal())

    with pytest.raises(errors.RetryableError, match="another rollback or promote is running"):
        await world.target().rollback(world.old, KEY, world.journal)

    assert world.fake.production_deployment(world.project) == world.live


async def test_a_production_deploy_made_while_the_job_ran_is_named_as_a_warning(
    world: World,
) -> None:
    landed: list[str] = []
    world.fake.after("POST /v1/projects/*/rollback/*", lambda: landed.append(world.deploy()))

    result = await world.target().rollback(world.old, KEY, world.journal)

    assert world.fake.production_deployment(world.project) == world.old
    assert result.external_ids["concurrentDeployments"] == landed[0]
    assert f"warning: deployment {landed[0]} was made while the rollback ran" in result.message


async def test_a_production_deploy_that_took_over_fails_the_rollback_naming_it(
    world: World,
) -> None:
    landed: list[str] = []

    def job_done_then_a_deploy_goes_live() -> None:
        world.fake.complete_job(world.project)
        landed.append(world.deploy())

    world.fake.after("POST /v1/projects/*/rollback/*", job_done_then_a_deploy_goes_live)

    with pytest.raises(errors.PermanentError, match="concurrent deploy") as raised:
        await world.target().rollback(world.old, KEY, world.journal)

    assert f"production is {landed[0]}" in str(raised.value)


@with_options(job_clock_ahead_ms=5_000)
async def test_a_deploy_that_took_over_fails_the_rollback_even_when_vercels_clocks_disagree(
    world: World,
) -> None:
    landed: list[str] = []

    def job_done_then_a_deploy_goes_live() -> None:  # stamped "before" the job was asked for
        world.fake.complete_job(world.project)
        landed.append(world.deploy())

    world.fake.after("POST /v1/projects/*/rollback/*", job_done_then_a_deploy_goes_live)

    with pytest.raises(errors.PermanentError) as raised:
        await world.target().rollback(world.old, KEY, world.journal)

    assert f"production is {landed[0]}" in str(raised.value)


# ----- candidates -----


async def test_candidates_leave_previews_out_and_show_state_time_and_url(world: World) -> None:
    base = world.fake.deployment(world.live).created_at
    failed = world.deploy(state="ERROR", created_at=base + 1, live=False)
    world.deploy(target=None, created_at=base + 2)  # a preview: not a production candidate

    found = await world.target().candidates(10)

    assert [(c.id, c.live, c.default) for c in found] == [
        (failed, False, False), (world.live, True, False), (world.old, False, True)
    ]  # fmt: skip
    assert [c.state for c in found] == ["ERROR", "READY", "READY"]
    assert found[1].created_at == datetime.fromtimestamp(base / 1000, UTC)
    assert found[1].note == world.fake.deployment(world.live).url


# ----- stop and resume traffic -----


async def test_stop_and_resume_traffic_record_that_they_paused_and_unpaused(
    world: World,
) -> None:
    plan = await world.target().plan(None)

    stopped = await world.target().stop_traffic(KEY, plan)
    again = await world.target().stop_traffic(KEY, plan)
    resumed = await world.target().resume_traffic(KEY, plan, world.journal)

    assert stopped.external_ids == {"paused": "true"}
    assert again.external_ids == {"paused": "true"}
    assert resumed.external_ids == {"unpaused": "true"}
    assert world.mutations("POST /v1/projects/*/pause") == 1
    assert world.mutations("POST /v1/projects/*/unpause") == 1


# ----- errors -----


@with_options(auth_failure_status=401)
async def test_a_401_is_unauthorized_like_a_403(world: World) -> None:
    with pytest.raises(errors.UnauthorizedError, match="HTTP 401"):
        await world.target(VERCEL_BAD_TOKEN).plan(None)


# ----- rate-limit headers (the HTTP layer) -----


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = 1_800_000_000.0
    date = "Fri, 15 Jan 2027 08:00:07 GMT"  # 1_800_000_007

    assert http_failures.retry_after(httpx.Headers({"Retry-After": "3"}), now) == 3.0
    assert http_failures.retry_after(httpx.Headers({"Retry-After": date}), now) == 7.0
    assert http_failures.retry_after(httpx.Headers({}), now) is None


async def test_a_retry_after_beyond_the_local_wait_goes_up_at_once(world: World) -> None:
    world.fake.inject(FAULTS["429-retry-after"], times=1)
    options = dataclasses.replace(
        fast_options(world.time), retry=http.RequestRetries(attempts=3, max_wait=0.5)
    )

    with pytest.raises(errors.RateLimitedError) as raised:
        await world.target(options=options).plan(None)

    assert raised.value.retry_after == 1.0
    assert world.time.sleeps == []


async def test_a_redirected_api_fails_clearly_instead_of_being_followed(world: World) -> None:
    moved = httpx.MockTransport(lambda _: httpx.Response(301, headers={"Location": "https://x"}))
    options = dataclasses.replace(fast_options(world.time), transport=moved)

    with pytest.raises(errors.PermanentError, match="HTTP 301: redirected; set apiUrl"):
        await world.target(options=options).plan(None)
