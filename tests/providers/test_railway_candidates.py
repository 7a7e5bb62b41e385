"""`RailwayTarget.candidates` against the stateful Railway GraphQL fake, over real HTTP.

Claims: the service's deployments in the environment are listed newest first, the live one and
the one `plan(None)` would choose are marked, and both are listed even past the limit; nothing
is changed, and a refused token is an UnauthorizedError that names the operation.
"""

from __future__ import annotations

import pytest

from rollback_operator.providers import errors
from rollback_operator.providers.base import Candidate
from tests.providers.test_railway_adapter import BAD_TOKEN, KEY, World, world

__all__ = ["world"]  # the fixture, shared with the adapter suite


def marks(rows: list[Candidate]) -> list[tuple[str, bool, bool]]:
    """(id, live, default) of each candidate, in order."""
    return [(c.id, c.live, c.default) for c in rows]


async def test_candidates_list_deployments_newest_first_marking_live_and_default(
    world: World,
) -> None:
    failed = world.deploy("FAILED", meta={"commitHash": "ccc1234567", "commitMessage": "oops\nx"})

    found = await world.target().candidates(10)

    assert marks(found) == [
        (failed, False, False), (world.live, True, False), (world.old, False, True)
    ]  # fmt: skip
    assert [c.state for c in found] == ["FAILED", "SUCCESS", "REMOVED"]
    assert found[0].note == "ccc1234 oops"
    assert found[2].note == "aaa"
    times = [c.created_at for c in found if c.created_at is not None]
    assert len(times) == 3
    assert times == sorted(times, reverse=True)
    assert (await world.target().plan(None)).to == world.old


async def test_candidates_keep_the_live_and_default_deployments_past_the_limit(
    world: World,
) -> None:
    newer = [world.deploy("FAILED") for _ in range(4)]

    found = await world.target(page_size=1).candidates(1)

    assert marks(found) == [
        (newer[-1], False, False), (world.live, True, False), (world.old, False, True)
    ]  # fmt: skip


async def test_candidates_after_a_rollback_mark_the_new_deployment_live(world: World) -> None:
    target = world.target()
    done = await target.rollback(world.old, KEY, world.journal)

    found = await target.candidates(10)

    made = done.external_ids["deploymentId"]
    assert marks(found)[0] == (made, True, False)
    assert (world.live, False, True) in marks(found)


async def test_candidates_change_nothing(world: World) -> None:
    await world.target().candidates(1)

    assert world.mutations() == 0


async def test_a_refused_token_is_unauthorized_and_names_the_operation(world: World) -> None:
    with pytest.raises(errors.UnauthorizedError, match="candidates") as raised:
        await world.target(token=BAD_TOKEN).candidates(10)

    assert BAD_TOKEN not in str(raised.value)
