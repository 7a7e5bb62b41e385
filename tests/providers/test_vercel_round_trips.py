"""How often the Vercel adapter asks Vercel, and which of its asks go out together.

Why this suite exists: in a burst of rollbacks every round trip a step waits for costs far more
than alone (issue 14), so the adapter sends reads that do not depend on each other at once and
reads nothing twice within one operation. Claims, each on the fake's request log: the plan and
the candidates read the project together with the deployments (or the pinned deployment); one
operation reads each page of the deployments' list once; a rollback reads the project, asks for
the job, looks at it no sooner than one poll interval later, and lists deployments once, after
the job, asking only for those created since the job's own request time (so it writes nothing to
its journal first, and still names a deploy made while a job it did not ask for ran).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from rollback_operator.providers import errors, http
from rollback_operator.providers.deployments import vercel
from sandbox.fakes.host import MemoryJournal
from tests.contracts.hosted import VercelWorld, vercel_world
from tests.providers.conftest import VirtualTime, fast_options

KEY = "uid-1/instant-rollback/frontend"
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


async def test_a_rollback_reads_the_project_asks_polls_and_then_lists_deployments_once(
    virtual_time: VirtualTime,
) -> None:
    with vercel_world(virtual_time) as world:  # the job ends at the third look
        await world.target().rollback(world.old, KEY, world.journal)

    project = f"GET /v9/projects/{world.project}"
    job = world.fake.project(world.project).job
    assert job is not None
    listing = world.fake.log.matching("GET /v6/deployments")[0]
    assert listing.query["since"] == str(job.requested_at - 1)  # only what came since it asked
    assert [r.route for r in world.fake.log.records] == [
        project, f"POST /v1/projects/{world.project}/rollback/{world.old}",
        project, project, project, "GET /v6/deployments",
    ]  # fmt: skip
    assert world.journal.recorded == {}


async def test_the_first_look_at_the_job_comes_one_poll_interval_after_asking(
    virtual_time: VirtualTime,
) -> None:
    wall = time.time()
    fake_clock = lambda: wall + virtual_time.now  # noqa: E731 - Vercel's time moves with ours
    with vercel_world(virtual_time, job_seconds=0.25, clock=fake_clock) as world:
        await world.target(poll_interval=0.1).rollback(world.old, KEY, world.journal)

    routes = [r.route for r in world.fake.log.records]
    after_asking = routes[routes.index(f"POST /v1/projects/{world.project}/rollback/{world.old}") :]
    assert after_asking[1:] == [f"GET /v9/projects/{world.project}"] * 3 + ["GET /v6/deployments"]
    assert virtual_time.sleeps[:3] == [0.1] * 3  # looks at 0.1, 0.2, 0.3 s; done from 0.25 s


async def test_a_deploy_made_while_someone_elses_job_to_the_target_ran_is_named(
    virtual_time: VirtualTime,
) -> None:
    with vercel_world(virtual_time, job_polls=10_000) as world:
        with pytest.raises(errors.RetryableError):  # their job, with their own journal
            await world.target(deadline=0.05).rollback(world.old, "someone", MemoryJournal())
        landed = world.deploy(live=False)
        job = world.fake.project(world.project).job
        assert job is not None
        world.fake.job_polls = job.polls + 1  # it ends at the next look

        result = await world.target().rollback(world.old, KEY, world.journal)

    assert world.mutations() == 1
    assert result.external_ids["concurrentDeployments"] == landed
