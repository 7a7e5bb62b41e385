"""How often the Vercel adapter asks Vercel, and which of its asks go out together.

Why this suite exists: in a burst of rollbacks every round trip a step waits for costs far more
than alone (issue 14), so the adapter sends reads that do not depend on each other at once and
reads nothing twice within one operation. Claims, each on the fake's request log: the plan and
the candidates read the project together with the deployments (or the pinned deployment); one
operation reads each page of the deployments' list once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import httpx
import pytest

from rollback_operator.providers import http
from rollback_operator.providers.deployments import vercel
from tests.contracts.hosted import VercelWorld, vercel_world
from tests.providers.conftest import VirtualTime, fast_options

SLOW = 0.3
"""The fake's answer time where a claim is about calls in flight at once: calls sent together
are both in flight long before either is answered."""


def patient(world: VercelWorld) -> http.Options:
    """`fast_options` with timeouts far above `SLOW`."""
    return dataclasses.replace(fast_options(world.time), timeouts=httpx.Timeout(5.0))


Operation = Callable[[vercel.VercelProject, VercelWorld], Awaitable[object]]


@pytest.mark.parametrize(
    ("operation", "with_project"),
    [
        pytest.param(lambda t, w: t.plan(None), "GET /v6/deployments", id="plan"),
        pytest.param(lambda t, w: t.plan(w.old), "GET /v13/deployments/*", id="pinned-plan"),
        pytest.param(lambda t, w: t.candidates(5), "GET /v6/deployments", id="candidates"),
    ],
)
async def test_the_project_and_the_deployments_are_read_together(
    virtual_time: VirtualTime, operation: Operation, with_project: str
) -> None:
    with vercel_world(virtual_time, latency=SLOW) as world:
        await operation(world.target(options=patient(world)), world)

    (project,) = world.fake.log.matching("GET /v9/projects/*")
    other = world.fake.log.matching(with_project)[0]
    assert project.overlaps(other)


async def test_candidates_read_each_page_of_deployments_once(virtual_time: VirtualTime) -> None:
    with vercel_world(virtual_time) as world:
        for _ in range(3):
            world.add_failed()  # newer than the live one: the default is two pages down

        found = await world.target(page_size=2).candidates(3)

    assert [c.id for c in found][-2:] == [world.live, world.old]
    pages = [r.query.get("until") for r in world.fake.log.matching("GET /v6/deployments")]
    assert len(pages) == 3
    assert len(set(pages)) == 3
