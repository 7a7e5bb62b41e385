"""What the Railway adapter asks Railway, request by request, on the fake's request log.

Claims: within one operation a read is asked once (the plan lists once; a rollback learns what
is live, its target and the newest deployment from one list), while every read meant to see a
change asks again (the search for the rollback's new deployment, the polls, the last look for
a concurrent deploy: the fake moves a new deployment on only when it is read alone) and
nothing read by one operation answers another.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contracts.hosted import RailwayWorld, railway_world
from tests.providers.conftest import VirtualTime

KEY = "uid-1/instant-rollback/backend"


@pytest.fixture
def world(virtual_time: VirtualTime) -> Iterator[RailwayWorld]:
    with railway_world(virtual_time) as served:
        yield served


def routes(world: RailwayWorld) -> list[str]:
    return [r.route for r in world.fake.log.records]


def until_the_mutation(world: RailwayWorld) -> list[str]:
    asked = routes(world)
    return asked[: asked.index("deploymentRollback")]


async def test_a_plan_reads_the_deployment_list_once(world: RailwayWorld) -> None:
    plan = await world.target().plan(None)

    assert (plan.from_, plan.to) == (world.live, world.old)
    assert routes(world) == ["deployments"]


async def test_a_rollback_learns_what_is_live_its_target_and_the_newest_from_one_list(
    world: RailwayWorld,
) -> None:
    await world.target().rollback(world.old, KEY, world.journal)

    assert until_the_mutation(world) == ["deployments"]
    assert world.journal.recorded["newestBefore"] == world.live


async def test_a_target_beyond_the_first_page_is_read_once_by_id(world: RailwayWorld) -> None:
    await world.target(page_size=1).rollback(world.old, KEY, world.journal)

    assert until_the_mutation(world) == ["deployments", "deployment"]


async def test_every_operation_reads_railway_afresh(world: RailwayWorld) -> None:
    target = world.target()
    plan = await target.plan(None)
    landed = world.fake.deploy_source(world.service, world.env)  # after the plan read

    await target.rollback(plan.to, KEY, world.journal)

    assert until_the_mutation(world) == ["deployments", "deployments"]
    assert world.journal.recorded["newestBefore"] == landed


async def test_after_the_mutation_the_search_for_its_deployment_and_each_poll_ask_railway(
    world: RailwayWorld,
) -> None:
    result = await world.target().rollback(world.old, KEY, world.journal)

    asked = routes(world)
    after = asked[asked.index("deploymentRollback") + 1 :]
    assert after == ["deployments", "deployment", "deployment", "deployment", "deployments"]
    assert world.active() == result.external_ids["deploymentId"]
