"""`VercelTarget.candidates` against the stateful Vercel fake, over real HTTP.

Claims: production deployments are listed newest first (previews left out), the live one and
the one `plan(None)` would choose are marked, and both are listed even past the limit; nothing
is changed, and a refused token is an UnauthorizedError that names the operation.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from rollback_operator.providers import errors
from rollback_operator.providers.base import Candidate
from tests.providers.test_vercel_adapter import BAD_TOKEN, TEAM, World, world

__all__ = ["world"]  # the fixture, shared with the adapter suite


def marks(rows: list[Candidate]) -> list[tuple[str, bool, bool]]:
    """(id, live, default) of each candidate, in order."""
    return [(c.id, c.live, c.default) for c in rows]


async def test_candidates_list_production_newest_first_marking_live_and_default(
    world: World,
) -> None:
    base = world.fake.deployment(world.live).created_at
    failed = world.deploy(state="ERROR", created_at=base + 1, live=False)
    world.deploy(target=None, created_at=base + 2)  # a preview: not a production candidate

    found = await world.target().candidates(10)

    assert marks(found) == [
        (failed, False, False), (world.live, True, False), (world.old, False, True)
    ]  # fmt: skip
    assert [c.state for c in found] == ["ERROR", "READY", "READY"]
    assert found[1].created_at == datetime.fromtimestamp(base / 1000, UTC)
    assert found[1].note == world.fake.deployment(world.live).url
    assert (await world.target().plan(None)).to == world.old


async def test_candidates_keep_the_live_and_default_deployments_past_the_limit(
    world: World,
) -> None:
    base = world.fake.deployment(world.live).created_at
    newer = [world.deploy(state="ERROR", created_at=base + n, live=False) for n in range(1, 6)]

    found = await world.target(page_size=2).candidates(2)

    assert marks(found) == [
        (newer[-1], False, False), (newer[-2], False, False),
        (world.live, True, False), (world.old, False, True),
    ]  # fmt: skip


async def test_candidates_after_an_instant_rollback_mark_the_older_live_deployment(
    world: World,
) -> None:
    target = world.target()
    await target.rollback(world.old, "uid-1/instant-rollback/frontend", world.journal)

    found = await target.candidates(10)

    assert marks(found) == [(world.live, False, False), (world.old, True, False)]


async def test_candidates_mark_no_default_when_nothing_earlier_served(world: World) -> None:
    solo = world.fake.add_project("solo", team_id=TEAM)
    only = world.fake.add_deployment(solo)

    found = await dataclasses.replace(world, project=solo).target().candidates(10)

    assert marks(found) == [(only, True, False)]


async def test_candidates_change_nothing_and_stay_in_the_team(world: World) -> None:
    await world.target().candidates(1)

    assert world.mutations() == 0
    assert all(r.query.get("teamId") == TEAM for r in world.fake.log.records)


async def test_a_refused_token_is_unauthorized_and_names_the_operation(world: World) -> None:
    with pytest.raises(errors.UnauthorizedError, match="candidates") as raised:
        await world.target(token=BAD_TOKEN).candidates(10)

    assert BAD_TOKEN not in str(raised.value)
