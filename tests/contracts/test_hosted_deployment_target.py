"""The wire contract of the deployment adapters, claimed of every hosted row of
`DEPLOYMENT_TARGETS`.

Claims: the real factory builds the adapter from a policy with the token read from the policy's
namespace; every operation survives one transient fault (429 with Retry-After, 500, a stall,
a dropped connection) by retrying, and a persistent one (or a refused token) ends in its error
class, naming the operation, with no token in the error or the logs and nothing changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import rollback_operator
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers import errors, registry
from rollback_operator.providers.base import DeploymentTarget
from sandbox import manifests
from tests.contracts.worlds import HostedWorld
from tests.providers.conftest import (
    FAKES,
    FAULTS,
    OPERATIONS,
    PERSISTENT_ERRORS,
    DictSecrets,
    assert_clean_failure,
    only_target,
)

KEY = "uid-1/instant-rollback/target"


async def test_the_real_factory_builds_the_adapter_with_the_token_from_the_policys_namespace(
    hosted_deployments: HostedWorld,
) -> None:
    named = hosted_deployments.policy_block()
    manifest = manifests.policy(namespace="prod", **only_target(named.slot, named.block))
    secrets = DictSecrets({("prod", named.secret, "token"): named.token})

    providers = await registry.RealProviderFactory(FAKES).build(
        RollbackPolicy.model_validate(manifest), secrets
    )
    built: DeploymentTarget | None = getattr(providers, named.slot)
    assert built is not None
    plan = await built.plan(None)

    assert secrets.reads == [("prod", named.secret, "token")]
    assert [providers.frontend, providers.backend].count(None) == 1
    assert (plan.from_, plan.to) == (hosted_deployments.live, hosted_deployments.old)
    agents = {r.headers.get("User-Agent") for r in hosted_deployments.fake.log.records}
    assert agents == {f"rollback-operator/{rollback_operator.__version__}"}


async def _run(world: HostedWorld, operation: str, target: DeploymentTarget) -> None:
    """`operation` where it has something to do (resume: after someone stopped traffic)."""
    runs: dict[str, Callable[[], Awaitable[Any]]] = {
        "plan": lambda: target.plan(None),
        "candidates": lambda: target.candidates(10),
        "stop traffic": lambda: target.stop_traffic(KEY, world.serving_plan),
        "rollback": lambda: target.rollback(world.old, KEY, world.journal),
        "resume traffic": lambda: target.resume_traffic(KEY, world.serving_plan, world.journal),
    }
    if operation == "resume traffic":
        world.stop_elsewhere()
    await runs[operation]()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_transient_fault_is_retried_and_the_operation_succeeds(
    hosted_deployments: HostedWorld, operation: str, fault: str
) -> None:
    world = hosted_deployments
    world.fake.inject(FAULTS[fault], times=1)

    await _run(world, operation, world.target())

    first_to_arrive = min(world.fake.log.records, key=lambda r: r.arrived)
    assert first_to_arrive.fault is not None
    if operation == "stop traffic":
        assert world.traffic_stopped()
    else:
        assert world.serves_traffic()
    if operation == "rollback":
        assert world.serves_build_of(world.old)
    if fault == "429-retry-after":
        assert world.time.sleeps[0] >= 1.0


@pytest.mark.parametrize("fault", PERSISTENT_ERRORS)
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_persistent_fault_ends_in_its_error_class_naming_the_operation(
    hosted_deployments: HostedWorld, operation: str, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = hosted_deployments
    caplog.set_level(logging.DEBUG)
    if fault != "bad-token":
        world.fake.inject(FAULTS[fault], times=None)
    token = world.bad_token if fault == "bad-token" else None

    with pytest.raises(errors.ProviderError) as raised:
        await _run(world, operation, world.target(token))

    assert_clean_failure(raised.value, fault, operation, world.secrets(), caplog.text)
    assert world.mutations() == 0
