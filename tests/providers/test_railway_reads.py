"""What the Railway adapter asks Railway, request by request, on the fake's request log.

Claims: within one operation a read is asked once (the plan lists once; a rollback learns what
is live, its target and the newest deployment from one list), while every read meant to see a
change asks again (the search for the rollback's new deployment, the polls, the last look for
a concurrent deploy: the fake moves a new deployment on only when it is read alone) and
nothing read by one operation answers another; the first poll comes one poll interval after
the list that found the new deployment (Railway builds for seconds to minutes,
docs/providers.md#R11, so an immediate look finds it where the list did); and the journal's
write of the new deployment's id runs while the adapter polls, and has landed before the
rollback returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from sandbox.fakes.host import MemoryJournal
from tests.contracts.hosted import RailwayWorld, railway_world
from tests.providers.conftest import VirtualTime

KEY = "uid-1/instant-rollback/backend"
POLL = 0.01
"""The poll interval `RailwayWorld.target` sets, in virtual seconds."""


@pytest.fixture
def world(virtual_time: VirtualTime) -> Iterator[RailwayWorld]:
    with railway_world(virtual_time) as served:
        yield served


@pytest.fixture
def timed(virtual_time: VirtualTime) -> Iterator[RailwayWorld]:
    """A world whose new deployments go live 2.5 poll intervals after they are asked for, on
    the virtual clock the adapter waits on, however often they are read (as Railway's do)."""
    start = time.time()
    with railway_world(
        virtual_time, clock=lambda: start + virtual_time.now, deploy_seconds=2.5 * POLL
    ) as served:
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
    landed = world.deploy()  # live since the plan read (one still on its way would fail, R24)

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


async def test_the_first_poll_waits_one_interval_after_the_list_that_found_the_deployment(
    timed: RailwayWorld, virtual_time: VirtualTime
) -> None:
    polled_at: list[float] = []
    timed.fake.after("deployment", lambda: polled_at.append(virtual_time.now), times=None)

    result = await timed.target().rollback(timed.old, KEY, timed.journal)

    assert polled_at == pytest.approx([POLL, 2 * POLL, 3 * POLL])
    assert timed.active() == result.external_ids["deploymentId"]


class HeldJournal(MemoryJournal):
    """A journal whose write of `deploymentId` lands only once Railway has been asked for one
    deployment (after the mutation: before it, the rollback reads only a list)."""

    def __init__(self, world: RailwayWorld) -> None:
        super().__init__()
        self.polled = asyncio.Event()
        loop = asyncio.get_running_loop()
        world.fake.after("deployment", lambda: loop.call_soon_threadsafe(self.polled.set))

    async def record(self, **ids: str) -> None:
        if "deploymentId" in ids:
            await asyncio.wait_for(self.polled.wait(), timeout=5.0)
        await super().record(**ids)


async def test_the_new_deployments_id_is_written_while_the_adapter_polls_and_lands_first(
    world: RailwayWorld,
) -> None:
    journal = HeldJournal(world)

    result = await world.target().rollback(world.old, KEY, journal)

    assert journal.recorded["deploymentId"] == result.external_ids["deploymentId"]
