"""The Railway adapter against the stateful Railway GraphQL fake, over real HTTP: what only
Railway does.

What every deployment target does (plan, rollback once per key, stop and resume traffic,
candidates, the fault matrix, the factory) is claimed in `tests/contracts`. Claims here: it
plans from the service's history, skipping what never ran and following the cursor, rolls back
from a live deployment that crashed, and refuses pins Railway would refuse; a rollback makes a
new deployment and waits for it, never resends an ambiguous request blindly, and carries
Railway's refusal; it stops traffic by stopping the deployments that serve and returns only once
their instances are gone, and brings the stopped build back without deploying the service's
latest source (a replica change is only staged, docs/providers.md#R16-R18); it works with both
token styles; GraphQL `errors` map to the error hierarchy; `X-RateLimit-Reset` in any format.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import httpx
import pytest

from rollback_operator.providers import errors, http_failures
from sandbox.fakes.http_server import Dropped, ErrorReply
from tests.contracts.hosted import (
    RAILWAY_PROJECT_TOKEN,
    RAILWAY_TOKEN,
    REPLICAS,
    RailwayWorld,
    railway_world,
)
from tests.providers.conftest import VirtualTime

KEY = "uid-1/instant-rollback/backend"
World = RailwayWorld


@pytest.fixture
def world(request: pytest.FixtureRequest, virtual_time: VirtualTime) -> Iterator[World]:
    with railway_world(virtual_time, **getattr(request, "param", {})) as served:
        yield served


def with_options(**options: Any) -> pytest.MarkDecorator:
    label = ",".join(f"{key}={value}" for key, value in options.items())
    return pytest.mark.parametrize("world", [options], indirect=True, ids=[label])


# ----- plan -----


async def test_plan_targets_the_newest_earlier_deployment_that_can_be_rolled_back_to(
    world: World,
) -> None:
    world.deploy("FAILED", created_at=time.time() - 3590)  # newer than `old`, never ran
    world.deploy("FAILED", created_at=time.time())  # newer than `live`, did not replace it

    plan = await world.target().plan(None)

    assert (plan.from_, plan.to) == (world.live, world.old)


async def test_plan_follows_the_cursor_when_the_last_good_deployment_is_on_a_later_page(
    world: World,
) -> None:
    base = world.fake.deployment(world.old).created_at
    for n in range(5):
        world.deploy("CRASHED", created_at=base + 1 + n, can_rollback=False)

    plan = await world.target(page_size=2).plan(None)

    assert plan.to == world.old
    cursors = [p.body["variables"]["after"] for p in world.fake.log.matching("deployments")]
    assert cursors[0] is None
    assert len([c for c in cursors if c]) >= 3


async def test_a_live_deployment_that_crashed_is_the_one_rolled_back_from(world: World) -> None:
    with world.fake.lock:
        world.fake.deployment(world.live).status = "CRASHED"

    plan = await world.target().plan(None)

    assert (plan.from_, plan.to) == (world.live, world.old)


@pytest.mark.parametrize(
    ("make_pin", "problem"),
    [
        pytest.param(lambda w: w.deploy("FAILED"), "is FAILED", id="failed"),
        pytest.param(
            lambda w: w.deploy("REMOVED", can_rollback=False), "canRollback false", id="expired"
        ),
        pytest.param(
            lambda w: w.fake.add_deployment(w.fake.add_service(w.project), w.env),
            "another service",
            id="other-service",
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


# ----- rollback -----


async def test_rollback_waits_for_the_new_deployment_to_succeed(world: World) -> None:
    result = await world.target().rollback(world.old, KEY, world.journal)

    new = result.external_ids["deploymentId"]
    assert new not in (world.old, world.live)
    assert result.external_ids["rolledBackTo"] == world.old
    assert world.mutations("deploymentRollback") == 1
    assert len(world.fake.log.matching("deployment")) >= 3  # polled through its statuses


@pytest.mark.parametrize("outcome", ["FAILED", "CRASHED"])
async def test_a_rollback_deployment_that_fails_is_a_permanent_error(
    world: World, outcome: Literal["FAILED", "CRASHED"]
) -> None:
    world.fake.deploy_outcome = outcome

    with pytest.raises(errors.PermanentError, match=f"ended {outcome}"):
        await world.target().rollback(world.old, KEY, world.journal)

    assert world.active() in (world.live, None)


@with_options(deploy_polls=10_000)
async def test_a_deployment_past_its_deadline_is_retryable_and_the_retry_waits_for_it(
    world: World,
) -> None:
    target = world.target(deadline=0.05)

    with pytest.raises(errors.RetryableError, match="still"):
        await target.rollback(world.old, KEY, world.journal)
    world.fake.deploy_polls = 0
    result = await target.rollback(world.old, KEY, world.journal)

    assert world.mutations("deploymentRollback") == 1
    assert world.active() == result.external_ids["deploymentId"]


async def test_an_ambiguous_rollback_failure_is_not_resent_blindly(world: World) -> None:
    world.fake.inject(Dropped(), route="deploymentRollback", times=1)
    target = world.target()

    with pytest.raises(errors.RetryableError, match="rollback: POST /graphql/v2"):
        await target.rollback(world.old, KEY, world.journal)
    sent_once = world.mutations("deploymentRollback")
    result = await target.rollback(world.old, KEY, world.journal)

    assert sent_once == 1
    assert world.mutations("deploymentRollback") == 2  # the first never reached the resolver
    assert world.active() == result.external_ids["deploymentId"]


async def test_a_refused_rollback_carries_railways_message(world: World) -> None:
    expired = world.deploy("REMOVED", created_at=time.time() - 7200, can_rollback=False)

    with pytest.raises(errors.PermanentError, match="Deployment cannot be rolled back"):
        await world.target().rollback(expired, KEY, world.journal)


# ----- a deploy by someone else while the rollback runs -----


async def test_a_deploy_landing_right_after_the_rollback_was_asked_for_fails_it_naming_the_deploy(
    world: World,
) -> None:
    landed: list[str] = []
    world.fake.after(
        "deploymentRollback",
        lambda: landed.append(world.fake.deploy_source(world.service, world.env)),
    )

    with pytest.raises(errors.PermanentError, match="concurrent deploy") as raised:
        await world.target().rollback(world.old, KEY, world.journal)

    assert landed[0] in str(raised.value)
    ours = world.journal.recorded["deploymentId"]
    assert ours != landed[0]
    assert world.fake.deployment(ours).meta == world.fake.deployment(world.old).meta


async def test_a_concurrent_deploy_that_failed_is_named_as_a_warning(world: World) -> None:
    failed: list[str] = []
    world.fake.after("deploymentRollback", lambda: failed.append(world.deploy("FAILED")))

    result = await world.target().rollback(world.old, KEY, world.journal)

    assert world.serves_build_of(world.old)
    assert result.external_ids["concurrentDeployments"] == f"{failed[0]} (FAILED)"
    assert f"warning: deployment {failed[0]} (FAILED) also appeared" in result.message


async def test_newcomers_none_of_which_carries_the_target_build_are_not_taken_for_the_rollback(
    world: World,
) -> None:
    landed: list[str] = []

    def rollback_meta_differs_and_a_deploy_lands() -> None:
        ours = world.fake.deployment(world.fake.deployments_of(world.service, world.env)[0])
        ours.meta = {**ours.meta, "reason": "rollback"}  # docs/providers.md#R21, harsh reading
        landed.append(world.fake.deploy_source(world.service, world.env))

    world.fake.after("deploymentRollback", rollback_meta_differs_and_a_deploy_lands)

    with pytest.raises(errors.PermanentError, match="cannot be told") as raised:
        await world.target().rollback(world.old, KEY, world.journal)

    assert landed[0] in str(raised.value)
    assert "deploymentId" not in world.journal.recorded


async def test_after_a_restart_a_deploy_not_carrying_the_target_build_is_not_taken_for_it(
    world: World,
) -> None:
    await world.journal.record(newestBefore=world.live)  # then the operator died, unsent
    landed = world.fake.deploy_source(world.service, world.env)

    with pytest.raises(errors.PermanentError, match=landed):
        await world.target().rollback(world.old, KEY, world.journal)

    assert world.mutations("deploymentRollback") == 0


# ----- candidates -----


async def test_candidates_show_status_commit_and_time(world: World) -> None:
    failed = world.deploy("FAILED", meta={"commitHash": "ccc1234567", "commitMessage": "oops\nx"})

    found = await world.target().candidates(10)

    assert [(c.id, c.live, c.default) for c in found] == [
        (failed, False, False), (world.live, True, False), (world.old, False, True)
    ]  # fmt: skip
    assert [c.state for c in found] == ["FAILED", "SUCCESS", "REMOVED"]
    assert found[0].note == "ccc1234 oops"
    assert found[2].note == "aaa"
    times = [c.created_at for c in found if c.created_at is not None]
    assert len(times) == 3
    assert times == sorted(times, reverse=True)


# ----- stop and resume traffic -----

SOURCE_DEPLOYS_AND_REPLICA_CHANGES = "serviceInstance*"  # DeployV2, Redeploy, Update


@with_options(stop_requests=3)
async def test_stop_traffic_stops_the_live_deployment_and_returns_once_none_of_its_instances_runs(
    world: World,
) -> None:
    target = world.target()

    stopped = await target.stop_traffic(KEY, await target.plan(None))

    assert world.fake.serving(world.service, world.env) == []
    assert stopped.external_ids == {"stoppedDeployments": world.live}
    assert world.mutations("deploymentStop") == 1
    assert len(world.fake.log.matching("deployment")) >= 3  # looked until the stop landed
    assert world.mutations(SOURCE_DEPLOYS_AND_REPLICA_CHANGES) == 0


async def test_resume_traffic_brings_back_the_stopped_build_never_the_latest_source(
    world: World,
) -> None:
    target = world.target()
    await target.rollback(world.old, KEY, world.journal)  # serves `old`'s build; source is `live`
    plan = await target.plan(None)
    await target.stop_traffic(KEY, plan)

    resumed = await target.resume_traffic(KEY, plan, world.journal)

    serving = world.fake.serving(world.service, world.env)
    assert serving == [resumed.external_ids["resumedDeploymentId"]]
    assert world.fake.deployment(serving[0]).meta == world.fake.deployment(world.old).meta
    assert world.fake.deployment(serving[0]).replicas == REPLICAS
    assert world.mutations(SOURCE_DEPLOYS_AND_REPLICA_CHANGES) == 0


async def test_resume_traffic_redone_waits_for_the_deployment_it_asked_for(world: World) -> None:
    target = world.target()
    plan = await target.plan(None)
    await target.stop_traffic(KEY, plan)
    world.fake.deploy_polls = 10_000

    with pytest.raises(errors.RetryableError, match="still"):
        await world.target(deadline=0.05).resume_traffic(KEY, plan, world.journal)
    world.fake.deploy_polls = 0
    resumed = await world.target().resume_traffic(KEY, plan, world.journal)

    assert world.mutations("deploymentRollback") == 1
    assert world.fake.serving(world.service, world.env) == [
        resumed.external_ids["resumedDeploymentId"]
    ]


async def test_a_service_stopped_before_the_rollback_is_left_stopped_after_deploy_previous(
    world: World,
) -> None:
    world.stop_elsewhere()
    target = world.target()
    plan = await target.plan(None)

    made = (await target.rollback(plan.to, KEY, world.journal)).external_ids["deploymentId"]
    left = await target.resume_traffic(KEY, plan, world.journal)

    assert plan.serving is False
    assert f"left stopped; stopped {made}" in left.message
    assert world.fake.serving(world.service, world.env) == []
    assert world.fake.deployment(made).meta == world.fake.deployment(world.old).meta


async def test_resume_refuses_when_the_stopped_deployment_cannot_be_rolled_back_to(
    world: World,
) -> None:
    target = world.target()
    plan = await target.plan(None)
    await target.stop_traffic(KEY, plan)
    with world.fake.lock:
        world.fake.deployment(world.live).can_rollback = False

    with pytest.raises(errors.PermanentError, match="never 'Deploy Latest Commit'"):
        await target.resume_traffic(KEY, plan, world.journal)

    assert world.mutations("deploymentRollback") == 0


# ----- auth and GraphQL errors -----


@pytest.mark.parametrize(
    ("token", "token_type", "header"),
    [
        pytest.param(RAILWAY_TOKEN, "account", "Authorization", id="account-bearer"),
        pytest.param(RAILWAY_PROJECT_TOKEN, "project", "Project-Access-Token", id="project-token"),
    ],
)
async def test_both_token_styles_plan_and_roll_back(
    world: World, token: str, token_type: Literal["account", "project"], header: str
) -> None:
    target = world.target(token, token_type)

    plan = await target.plan(None)
    await target.rollback(plan.to, KEY, world.journal)

    assert world.active() not in (world.live, None)
    sent = [{k.lower(): v for k, v in r.headers.items()} for r in world.fake.log.records]
    other = "project-access-token" if header == "Authorization" else "authorization"
    assert all(h[header.lower()].endswith("***REDACTED***") for h in sent)
    assert not any(other in h for h in sent)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("Not Authorized", errors.UnauthorizedError),
        ("Project Token not found", errors.UnauthorizedError),
        ("Rate limit exceeded. Please try again later.", errors.RateLimitedError),
        ("Deployment not found", errors.NotFoundError),
        ("Something unexpected happened", errors.PermanentError),
    ],
)
async def test_graphql_errors_inside_http_200_map_to_the_error_hierarchy(
    world: World, message: str, error: type[errors.ProviderError]
) -> None:
    world.fake.inject(ErrorReply(message), route="deployments", times=1)

    with pytest.raises(errors.ProviderError) as raised:
        await world.target().plan(None)

    assert type(raised.value) is error
    assert message in str(raised.value)
    assert "plan: POST /graphql/v2 (deployments)" in str(raised.value)


async def test_a_graphql_validation_error_with_http_400_is_permanent(world: World) -> None:
    world.fake.inject(ErrorReply("Cannot query field", status=400), route="deployments")

    with pytest.raises(errors.PermanentError, match="HTTP 400: Cannot query field"):
        await world.target().plan(None)


# ----- rate-limit headers (the HTTP layer) -----


@pytest.mark.parametrize(
    "reset",
    [
        pytest.param("1800000005", id="unix-seconds"),
        pytest.param("1800000005000", id="unix-ms"),
        pytest.param("2027-01-15T08:00:05Z", id="iso"),
        pytest.param("5", id="seconds-from-now"),
    ],
)
def test_x_ratelimit_reset_is_honoured_in_every_format_railway_might_use(reset: str) -> None:
    headers = httpx.Headers({"X-RateLimit-Reset": reset})

    assert http_failures.retry_after(headers, 1_800_000_000.0) == pytest.approx(5.0)
