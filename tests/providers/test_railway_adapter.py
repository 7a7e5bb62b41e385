"""The Railway adapter against the stateful Railway GraphQL fake, over real HTTP.

Claims: it plans from the service's deployment history (or a checked pin), rolls back once per
key and waits for the deployment Railway creates, never acts when the target already serves,
scales to zero and back to exactly the recorded count, works with both token styles, and maps
GraphQL `errors` and transport failures to the right error class without a token in sight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx
import pytest

from rollback_operator.api.policy import RailwayTarget, RollbackPolicy
from rollback_operator.api.rollback import DeploymentPlan
from rollback_operator.providers import errors, http, registry
from rollback_operator.providers.deployments import railway
from sandbox import manifests
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.http_server import Dropped, ErrorReply
from sandbox.fakes.railway_server import FakeRailway
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

TOKEN = "rw-account-secret-42"
PROJECT_TOKEN = "rw-project-secret-77"
BAD_TOKEN = "rw-wrong-secret-13"
KEY = "uid-1/instant-rollback/backend"


@dataclass
class World:
    """A served fake: one service with two replicas, an older good deployment and the live one."""

    fake: FakeRailway
    url: str
    time: VirtualTime
    project: str
    env: str
    service: str
    old: str
    live: str

    journal: MemoryJournal = field(default_factory=lambda: MemoryJournal())

    def target(
        self,
        token: str = TOKEN,
        token_type: Literal["account", "project"] = "account",
        service: str | None = None,
        **pacing: Any,
    ) -> railway.RailwayService:
        config = RailwayTarget.model_validate(
            {"projectId": self.project, "environmentId": self.env,
             "serviceId": service or self.service, "tokenType": token_type,
             "apiUrl": f"{self.url}/graphql/v2",
             "tokenSecretRef": {"name": "railway", "key": "token"}}
        )  # fmt: skip
        paced = replace(railway.PACING, **{"poll_interval": 0.01, "deadline": 5.0, **pacing})
        return railway.RailwayService(config, token, fast_options(self.time), paced)

    def deploy(self, status: str = "SUCCESS", **options: Any) -> str:
        return self.fake.add_deployment(self.service, self.env, status=status, **options)

    def active(self) -> str | None:
        return self.fake.active_deployment(self.service, self.env)

    def replicas(self) -> int:
        return self.fake.service_instance(self.service, self.env).num_replicas

    def mutations(self, route: str = "*") -> int:
        return self.fake.log.count_mutating(route)


@pytest.fixture
def world(request: pytest.FixtureRequest, virtual_time: VirtualTime) -> Iterator[World]:
    fake = FakeRailway(token=TOKEN, **getattr(request, "param", {}))
    project = fake.add_project("shop")
    env = fake.add_environment(project, "production")
    service = fake.add_service(project, replicas=2)
    start = time.time() - 3600
    old = fake.add_deployment(service, env, created_at=start, meta={"commitHash": "aaa"})
    live = fake.add_deployment(service, env, created_at=start + 60, meta={"commitHash": "bbb"})
    fake.add_project_token(PROJECT_TOKEN, project_id=project, environment_id=env)
    with fake.serve() as server:
        yield World(fake, server.url, virtual_time, project, env, service, old, live)


def with_options(**options: Any) -> pytest.MarkDecorator:
    label = ",".join(f"{key}={value}" for key, value in options.items())
    return pytest.mark.parametrize("world", [options], indirect=True, ids=[label])


# ----- wiring -----


async def test_the_real_factory_builds_the_adapter_with_the_token_from_the_policys_namespace(
    world: World,
) -> None:
    config = {"projectId": world.project, "environmentId": world.env, "serviceId": world.service,
              "tokenType": "project", "apiUrl": f"{world.url}/graphql/v2",
              "tokenSecretRef": {"name": "railway", "key": "token"}}  # fmt: skip
    manifest = manifests.policy(namespace="prod", **only_target("backend", {"railway": config}))
    secrets = DictSecrets({("prod", "railway", "token"): PROJECT_TOKEN})

    providers = await registry.RealProviderFactory().build(
        RollbackPolicy.model_validate(manifest), secrets
    )
    assert providers.backend is not None
    plan = await providers.backend.plan(None)

    assert secrets.reads == [("prod", "railway", "token")]
    assert providers.frontend is None
    assert (plan.from_, plan.to) == (world.live, world.old)


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


async def test_plan_honours_a_pin_that_can_be_rolled_back_to(world: World) -> None:
    plan = await world.target().plan(world.old)

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


async def test_plan_reports_a_missing_pin_as_not_found(world: World) -> None:
    with pytest.raises(errors.NotFoundError, match="pinned deployment d-missing not found"):
        await world.target().plan("d-missing")


async def test_dry_run_planning_makes_no_mutating_call(world: World) -> None:
    target = world.target()

    await target.plan(None)
    await target.plan(world.old)

    assert world.mutations() == 0


# ----- rollback -----


async def test_rollback_waits_for_the_new_deployment_to_succeed(world: World) -> None:
    result = await world.target().rollback(world.old, KEY, world.journal)

    new = result.external_ids["deploymentId"]
    assert new not in (world.old, world.live)
    assert world.active() == new
    assert result.external_ids["rolledBackTo"] == world.old
    assert world.mutations("deploymentRollback") == 1
    assert len(world.fake.log.matching("deployment")) >= 3  # polled through its statuses


async def test_rollback_is_a_no_op_when_the_target_is_the_active_deployment(world: World) -> None:
    result = await world.target().rollback(world.live, KEY, world.journal)

    assert world.mutations() == 0
    assert "already serves" in result.message


async def test_rollback_done_twice_has_one_effect(world: World) -> None:
    target = world.target()

    first = await target.rollback(world.old, KEY, world.journal)
    again = await target.rollback(world.old, KEY, world.journal)

    assert world.mutations() == 1
    assert again.external_ids["deploymentId"] == first.external_ids["deploymentId"]


async def test_rollback_after_a_restart_sees_the_same_build_is_live(world: World) -> None:
    await world.target().rollback(world.old, KEY, world.journal)
    after_restart = world.target()

    result = await after_restart.rollback(world.old, KEY, world.journal)

    assert world.mutations() == 1
    assert "already serves" in result.message


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


# ----- stop and resume traffic -----

TWO = DeploymentPlan.model_validate({"from": "a", "to": "b", "replicas": 2})
THREE = DeploymentPlan.model_validate({"from": "a", "to": "b", "replicas": 3})


async def test_stop_and_resume_traffic_restore_the_planned_replica_count(world: World) -> None:
    target = world.target()
    plan = await target.plan(None)

    stopped = await target.stop_traffic(KEY, plan)
    between = world.replicas()
    resumed = await target.resume_traffic(KEY, plan)

    assert stopped.external_ids == {"replicas": "2"}
    assert between == 0
    assert world.replicas() == 2
    assert resumed.external_ids == {"replicasRestored": "2"}
    assert world.mutations("serviceInstanceUpdate") == 2


async def test_stop_traffic_redone_by_a_restarted_operator_still_restores_the_count(
    world: World,
) -> None:
    plan = await world.target().plan(None)
    await world.target().stop_traffic(KEY, plan)

    again = await world.target().stop_traffic(KEY, plan)
    await world.target().resume_traffic(KEY, plan)

    assert again.message == "already at 0 replicas"
    assert world.replicas() == 2
    assert world.mutations() == 2


async def test_a_service_already_at_zero_stays_at_zero(world: World) -> None:
    with world.fake.lock:
        instance = world.fake.service_instance(world.service, world.env)
        instance.replicas_by_region = dict.fromkeys(instance.replicas_by_region, 0)
    target = world.target()
    plan = await target.plan(None)

    await target.stop_traffic(KEY, plan)
    await target.resume_traffic(KEY, plan)

    assert plan.replicas == 0
    assert world.replicas() == 0
    assert world.mutations() == 0


@with_options(allow_zero_replicas=False)
async def test_a_railway_refusing_zero_replicas_fails_stop_traffic_and_changes_nothing(
    world: World,
) -> None:
    with pytest.raises(errors.PermanentError, match=r"stop traffic: .*Invalid number of replicas"):
        await world.target().stop_traffic(KEY, TWO)

    assert world.replicas() == 2


# ----- auth and GraphQL errors -----


@pytest.mark.parametrize(
    ("token", "token_type", "header"),
    [
        pytest.param(TOKEN, "account", "Authorization", id="account-bearer"),
        pytest.param(PROJECT_TOKEN, "project", "Project-Access-Token", id="project-token"),
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


# ----- the fault matrix -----


async def _run(world: World, operation: str, target: railway.RailwayService) -> None:
    runs: dict[str, Callable[[], Awaitable[Any]]] = {
        "plan": lambda: target.plan(None),
        "stop traffic": lambda: target.stop_traffic(KEY, TWO),
        "rollback": lambda: target.rollback(world.old, KEY, world.journal),
        "resume traffic": lambda: target.resume_traffic(KEY, THREE),
    }
    await runs[operation]()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_transient_fault_is_retried_and_the_operation_succeeds(
    world: World, operation: str, fault: str
) -> None:
    world.fake.inject(FAULTS[fault], times=1)

    await _run(world, operation, world.target())

    assert world.fake.log.records[0].fault is not None
    expected = {"stop traffic": 0, "resume traffic": 3}.get(operation, 2)
    assert world.replicas() == expected
    if operation == "rollback":
        assert world.active() not in (world.live, None)
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

    assert http.retry_after(headers, 1_800_000_000.0) == pytest.approx(5.0)
