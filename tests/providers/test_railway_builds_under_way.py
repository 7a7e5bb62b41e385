"""The Railway adapter and a deployment of the service already on its way when a rollback runs.

Claims: a deployment still building or deploying (INITIALIZING, QUEUED, WAITING, BUILDING,
DEPLOYING) that was created before the rollback fails the step naming it, before Railway is
asked for anything and with no request beyond the list the rollback reads anyway: when it
finishes it replaces the rollback's deployment (docs/providers.md#R24, harsh reading, which
the fake takes). A redo after a crash judges it the same way; once it is cancelled, the
rollback goes through. A deployment that sets off only after the rollback was asked for (one
waiting for approval, approved meanwhile) fails the step once the rollback's own is live; a
live deployment that already serves the target is not "nothing to do" while one is on its way,
and resume-traffic (a rollback to the stopped deployment) is refused alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from rollback_operator.providers import errors
from tests.contracts.hosted import RAILWAY_TOKEN, RailwayWorld, railway_world
from tests.providers.conftest import VirtualTime

KEY = "uid-1/instant-rollback/backend"
UNDER_WAY = ["INITIALIZING", "QUEUED", "WAITING", "BUILDING", "DEPLOYING"]
CANCEL = "mutation Cancel($id: String!) { deploymentCancel(id: $id) }"


@pytest.fixture
def world(virtual_time: VirtualTime) -> Iterator[RailwayWorld]:
    with railway_world(virtual_time) as served:
        yield served


def started_a_minute_ago(world: RailwayWorld, status: str = "BUILDING") -> str:
    """A CI deploy of the bad release's branch, started a minute before the rollback."""
    return world.deploy(status, created_at=time.time() - 60, meta={"commitHash": "ccc"})


async def cancel_in_railway(world: RailwayWorld, deployment: str) -> None:
    """What the person the step's message speaks to does: `deploymentCancel`."""
    async with httpx.AsyncClient(base_url=world.url) as client:
        answer = await client.post(
            "/graphql/v2",
            json={"query": CANCEL, "variables": {"id": deployment}},
            headers={"Authorization": f"Bearer {RAILWAY_TOKEN}"},
        )
    assert answer.json() == {"data": {"deploymentCancel": True}}


def test_in_the_fake_an_older_build_that_finishes_late_replaces_what_went_live_after_it(
    world: RailwayWorld,
) -> None:
    under_way = started_a_minute_ago(world)
    rolled_back = world.deploy("SUCCESS", meta={"commitHash": "aaa"})

    world.fake.end_deployment(under_way)

    assert world.active() == under_way
    assert world.fake.deployment(rolled_back).status == "REMOVING"


@pytest.mark.parametrize("status", UNDER_WAY)
async def test_a_deployment_under_way_before_the_rollback_fails_it_before_railway_is_asked(
    world: RailwayWorld, status: str
) -> None:
    under_way = started_a_minute_ago(world, status)

    with pytest.raises(errors.PermanentError, match="started before the rollback") as raised:
        await world.target().rollback(world.old, KEY, world.journal)

    assert f"{under_way} ({status})" in str(raised.value)
    assert "deploymentCancel" in str(raised.value)
    assert world.mutations() == 0
    assert [r.route for r in world.fake.log.records] == ["deployments"]
    assert world.journal.recorded == {}


async def test_a_redo_after_a_crash_that_recorded_the_marker_judges_it_the_same(
    world: RailwayWorld,
) -> None:
    under_way = started_a_minute_ago(world)
    await world.journal.record(newestBefore=under_way)  # then the operator died, unsent

    with pytest.raises(errors.PermanentError, match=f"{under_way} \\(BUILDING\\) started before"):
        await world.target().rollback(world.old, KEY, world.journal)

    assert world.mutations() == 0


async def test_once_the_deployment_under_way_is_cancelled_the_rollback_goes_through(
    world: RailwayWorld,
) -> None:
    under_way = started_a_minute_ago(world)
    target = world.target()
    with pytest.raises(errors.PermanentError, match=under_way):
        await target.rollback(world.old, KEY, world.journal)

    await cancel_in_railway(world, under_way)
    result = await target.rollback(world.old, KEY, world.journal)

    assert world.active() == result.external_ids["deploymentId"]
    assert world.serves_build_of(world.old)
    assert world.mutations("deploymentRollback") == 1


async def test_one_approved_while_the_rollback_ran_fails_it_once_its_own_is_live(
    world: RailwayWorld,
) -> None:
    waiting = started_a_minute_ago(world, "NEEDS_APPROVAL")  # sets off only when approved

    def approved() -> None:
        world.fake.deployment(waiting).status = "QUEUED"

    world.fake.after("deploymentRollback", approved)

    with pytest.raises(errors.PermanentError, match=f"{waiting} \\(QUEUED\\) started before"):
        await world.target().rollback(world.old, KEY, world.journal)

    assert world.mutations("deploymentRollback") == 1
    assert world.serves_build_of(world.old)  # for now: until the approved one finishes


async def test_a_target_already_served_is_not_nothing_to_do_while_a_deployment_is_under_way(
    world: RailwayWorld,
) -> None:
    by_hand = world.deploy("SUCCESS", created_at=time.time() - 120, meta={"commitHash": "aaa"})
    under_way = started_a_minute_ago(world)

    with pytest.raises(errors.PermanentError, match=f"{under_way} \\(BUILDING\\) started before"):
        await world.target().rollback(world.old, KEY, world.journal)

    assert world.active() == by_hand
    assert world.mutations() == 0


async def test_resume_traffic_is_refused_too_while_a_deployment_is_under_way(
    world: RailwayWorld,
) -> None:
    target = world.target()
    plan = await target.plan(None)
    await target.stop_traffic(KEY, plan)
    under_way = started_a_minute_ago(world)

    with pytest.raises(errors.PermanentError, match=f"resume traffic: deployment {under_way} "):
        await target.resume_traffic(KEY, plan, world.journal)

    assert world.mutations("deploymentRollback") == 0
    assert world.traffic_stopped()


@pytest.mark.parametrize("status", UNDER_WAY)
async def test_stop_traffic_is_refused_while_a_deployment_is_under_way_and_stops_nothing(
    world: RailwayWorld, status: str
) -> None:
    """A full rollback stops traffic before it restores the database: a build that finishes
    meanwhile would serve the release the rollback takes away, on the restored data."""
    target = world.target()
    plan = await target.plan(None)
    under_way = started_a_minute_ago(world, status)

    with pytest.raises(errors.PermanentError, match=f"stop traffic: deployment {under_way} "):
        await target.stop_traffic(KEY, plan)

    assert world.mutations() == 0
    assert not world.traffic_stopped()
