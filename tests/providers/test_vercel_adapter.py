"""The Vercel adapter against the stateful Vercel fake, over real HTTP.

Claims: it plans from Vercel's own history (or a checked pin), rolls back by instant rollback
or promote and waits for the alias job, never acts when the target is already live, pauses
and unpauses only what it paused, and turns every transport failure into the right error class
without a token in sight.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

import rollback_operator
from rollback_operator.api.policy import RollbackPolicy, VercelTarget
from rollback_operator.api.rollback import DeploymentPlan
from rollback_operator.providers import errors, http, registry
from rollback_operator.providers.deployments import vercel
from sandbox import manifests
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.vercel_server import FakeVercel
from tests.providers.conftest import (
    FAULTS,
    OPERATIONS,
    PERSISTENT_ERRORS,
    DictSecrets,
    VirtualTime,
    assert_clean_failure,
    fast_options,
    only_target,
)

TOKEN = "vrc-secret-0123456789"
BAD_TOKEN = "vrc-wrong-secret-987654"
TEAM = "team_acme"
KEY = "uid-1/instant-rollback/frontend"
HOUR_MS = 3_600_000


@dataclass
class World:
    """A served fake with one team project: an older production deployment, then the live one."""

    fake: FakeVercel
    url: str
    time: VirtualTime
    project: str
    old: str
    live: str

    journal: MemoryJournal = field(default_factory=lambda: MemoryJournal())

    def target(
        self, token: str = TOKEN, options: http.Options | None = None, **pacing: Any
    ) -> vercel.VercelProject:
        config = VercelTarget.model_validate(
            {"projectId": self.project, "teamId": TEAM, "apiUrl": self.url,
             "tokenSecretRef": {"name": "vercel", "key": "token"}}
        )  # fmt: skip
        paced = replace(vercel.PACING, **{"poll_interval": 0.01, "deadline": 5.0, **pacing})
        return vercel.VercelProject(config, token, options or fast_options(self.time), paced)

    def deploy(self, **options: Any) -> str:
        return self.fake.add_deployment(self.project, **options)

    def paused(self) -> bool:
        return self.fake.project(self.project).paused

    def mutations(self, route: str = "*") -> int:
        return self.fake.log.count_mutating(route)


@pytest.fixture
def world(request: pytest.FixtureRequest, virtual_time: VirtualTime) -> Iterator[World]:
    fake = FakeVercel(token=TOKEN, **getattr(request, "param", {}))
    fake.add_team(TEAM, slug="acme")
    project = fake.add_project("web", team_id=TEAM, aliases=["web.example.com", "www.example.com"])
    start = int(time.time() * 1000) - 100 * HOUR_MS
    old = fake.add_deployment(project, created_at=start, meta={"githubCommitSha": "aaa"})
    live = fake.add_deployment(project, created_at=start + HOUR_MS, meta={"githubCommitSha": "bbb"})
    with fake.serve() as server:
        yield World(fake, server.url, virtual_time, project, old, live)


def with_options(**options: Any) -> pytest.MarkDecorator:
    label = ",".join(f"{key}={value}" for key, value in options.items())
    return pytest.mark.parametrize("world", [options], indirect=True, ids=[label])


# ----- wiring -----


async def test_the_real_factory_builds_the_adapter_with_the_token_from_the_policys_namespace(
    world: World,
) -> None:
    config = {"projectId": world.project, "teamId": TEAM, "apiUrl": world.url,
              "tokenSecretRef": {"name": "vercel", "key": "token"}}  # fmt: skip
    manifest = manifests.policy(namespace="prod", **only_target("frontend", {"vercel": config}))
    secrets = DictSecrets({("prod", "vercel", "token"): TOKEN})

    providers = await registry.RealProviderFactory().build(
        RollbackPolicy.model_validate(manifest), secrets
    )
    assert providers.frontend is not None
    plan = await providers.frontend.plan(None)

    assert secrets.reads == [("prod", "vercel", "token")]
    assert providers.backend is None
    assert plan.to == world.old
    agents = {r.headers.get("User-Agent") for r in world.fake.log.records}
    assert agents == {f"rollback-operator/{rollback_operator.__version__}"}


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


async def test_plan_honours_a_pin_that_is_ready_production_and_in_the_project(
    world: World,
) -> None:
    plan = await world.target().plan(world.old)

    assert (plan.from_, plan.to) == (world.live, world.old)


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


async def test_plan_reports_a_missing_pin_as_not_found(world: World) -> None:
    with pytest.raises(errors.NotFoundError, match="pinned deployment dpl_missing not found"):
        await world.target().plan("dpl_missing")


async def test_dry_run_planning_makes_no_mutating_call(world: World) -> None:
    target = world.target()

    await target.plan(None)
    await target.plan(world.old)

    assert world.mutations() == 0
    assert all(r.query.get("teamId") == TEAM for r in world.fake.log.records)


# ----- rollback -----


async def test_rollback_polls_the_alias_job_until_the_target_is_live(world: World) -> None:
    result = await world.target().rollback(world.old, KEY, world.journal)

    assert world.fake.production_deployment(world.project) == world.old
    assert world.mutations() == 1
    assert len(world.fake.log.matching("GET /v9/projects/*")) >= 3  # read, then polls
    assert result.external_ids["deploymentId"] == world.old
    assert result.external_ids["method"] == "rollback"
    assert result.external_ids["jobId"].startswith("rollback-")
    assert result.external_ids["followUp"] == vercel.FOLLOW_UP
    assert "promote" in result.message


async def test_rollback_is_a_no_op_when_the_target_is_already_live(world: World) -> None:
    result = await world.target().rollback(world.live, KEY, world.journal)

    assert world.mutations() == 0
    assert "already" in result.message


async def test_rollback_done_twice_has_one_effect(world: World) -> None:
    target = world.target()

    await target.rollback(world.old, KEY, world.journal)
    again = await target.rollback(world.old, KEY, world.journal)

    assert world.mutations() == 1
    assert "already" in again.message


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


# ----- stop and resume traffic -----


async def test_stop_and_resume_traffic_pause_then_unpause_the_project(world: World) -> None:
    target = world.target()
    plan = await target.plan(None)

    stopped = await target.stop_traffic(KEY, plan)
    paused_between = world.paused()
    resumed = await target.resume_traffic(KEY, plan)

    assert stopped.external_ids == {"paused": "true"}
    assert paused_between
    assert not world.paused()
    assert resumed.external_ids == {"unpaused": "true"}
    assert world.mutations("POST /v1/projects/*/pause") == 1
    assert world.mutations("POST /v1/projects/*/unpause") == 1


async def test_stop_traffic_redone_by_a_restarted_operator_still_unpauses_on_resume(
    world: World,
) -> None:
    plan = await world.target().plan(None)
    await world.target().stop_traffic(KEY, plan)

    again = await world.target().stop_traffic(KEY, plan)
    await world.target().resume_traffic(KEY, plan)

    assert again.external_ids == {"paused": "true"}
    assert not world.paused()
    assert world.mutations() == 2


async def test_a_project_paused_by_someone_else_stays_paused(world: World) -> None:
    world.fake.project(world.project).paused = True
    target = world.target()
    plan = await target.plan(None)

    await target.stop_traffic(KEY, plan)
    await target.resume_traffic(KEY, plan)

    assert plan.paused is True
    assert world.paused()
    assert world.mutations() == 0


# ----- the fault matrix -----

UNPAUSED = DeploymentPlan.model_validate({"from": "a", "to": "b", "paused": False})


async def _run(world: World, operation: str, target: vercel.VercelProject) -> None:
    runs: dict[str, Callable[[], Awaitable[Any]]] = {
        "plan": lambda: target.plan(None),
        "stop traffic": lambda: target.stop_traffic(KEY, UNPAUSED),
        "rollback": lambda: target.rollback(world.old, KEY, world.journal),
        "resume traffic": lambda: target.resume_traffic(KEY, UNPAUSED),
    }
    if operation == "resume traffic":
        world.fake.project(world.project).paused = True
    await runs[operation]()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_transient_fault_is_retried_and_the_operation_succeeds(
    world: World, operation: str, fault: str
) -> None:
    world.fake.inject(FAULTS[fault], times=1)

    await _run(world, operation, world.target())

    assert world.fake.log.records[0].fault is not None
    if operation == "rollback":
        assert world.fake.production_deployment(world.project) == world.old
    if fault == "429-retry-after":
        assert world.time.sleeps[0] >= 1.0


@pytest.mark.parametrize("fault", PERSISTENT_ERRORS)
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_persistent_fault_ends_in_its_error_class_naming_the_operation(
    world: World, operation: str, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    if fault != "bad-token":
        world.fake.inject(FAULTS[fault], times=None)
    token = BAD_TOKEN if fault == "bad-token" else TOKEN

    with pytest.raises(errors.ProviderError) as raised:
        await _run(world, operation, world.target(token))

    assert_clean_failure(raised.value, fault, operation, [TOKEN, BAD_TOKEN], caplog.text)
    assert world.mutations() == 0


@with_options(auth_failure_status=401)
async def test_a_401_is_unauthorized_like_a_403(world: World) -> None:
    with pytest.raises(errors.UnauthorizedError, match="HTTP 401"):
        await world.target(BAD_TOKEN).plan(None)


# ----- rate-limit headers (the HTTP layer) -----


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = 1_800_000_000.0
    date = "Fri, 15 Jan 2027 08:00:07 GMT"  # 1_800_000_007

    assert http.retry_after(httpx.Headers({"Retry-After": "3"}), now) == 3.0
    assert http.retry_after(httpx.Headers({"Retry-After": date}), now) == 7.0
    assert http.retry_after(httpx.Headers({}), now) is None


async def test_a_retry_after_beyond_the_local_wait_goes_up_at_once(world: World) -> None:
    world.fake.inject(FAULTS["429-retry-after"], times=1)
    options = dataclasses.replace(
        fast_options(world.time), retry=http.RetryPolicy(attempts=3, max_wait=0.5)
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
