"""The `DeploymentTarget` contract, claimed of every row of `DEPLOYMENT_TARGETS`.

Claims: `plan` goes back to the newest earlier deployment that served (or a pin that exists)
and changes nothing; `rollback` makes the older build serve, once per key and across restarts;
`stop_traffic` then `resume_traffic` restores serving exactly as planned, and leaves traffic
someone else stopped stopped; `candidates` lists newest first, marks what serves and what
`plan(None)` would choose, and changes nothing.
"""

from __future__ import annotations

import pytest

from rollback_operator.providers import errors
from rollback_operator.providers.base import Candidate
from tests.contracts.worlds import DeploymentWorld

KEY = "uid-1/instant-rollback/target"


def marks(rows: list[Candidate]) -> list[tuple[str, bool, bool]]:
    """(id, live, default) of each candidate, in order."""
    return [(c.id, c.live, c.default) for c in rows]


# ----- plan -----


async def test_plan_without_a_pin_goes_back_to_the_newest_earlier_deployment(
    deployments: DeploymentWorld,
) -> None:
    deployments.add_failed()

    plan = await deployments.target().plan(None)

    assert (plan.from_, plan.to) == (deployments.live, deployments.old)


async def test_plan_honours_a_pin_that_can_be_rolled_back_to(
    deployments: DeploymentWorld,
) -> None:
    plan = await deployments.target().plan(deployments.old)

    assert (plan.from_, plan.to) == (deployments.live, deployments.old)


async def test_plan_pins_must_exist(deployments: DeploymentWorld) -> None:
    missing = deployments.missing
    wording = deployments.words.missing_pin.format(pin=missing)

    with pytest.raises(errors.NotFoundError, match=wording):
        await deployments.target().plan(missing)


async def test_plan_without_an_earlier_deployment_is_refused(
    deployments: DeploymentWorld,
) -> None:
    target, _ = deployments.solo()

    with pytest.raises(errors.PermanentError):
        await target.plan(None)


async def test_planning_changes_nothing(deployments: DeploymentWorld) -> None:
    target = deployments.target()

    await target.plan(None)
    await target.plan(deployments.old)

    assert deployments.mutations() == 0


# ----- rollback -----


async def test_rollback_makes_the_older_build_serve_and_names_what_serves(
    deployments: DeploymentWorld,
) -> None:
    result = await deployments.target().rollback(deployments.old, KEY, deployments.journal)

    assert deployments.serves_build_of(deployments.old)
    assert deployments.serving() == result.external_ids["deploymentId"]
    assert deployments.mutations() == 1


async def test_rollback_to_what_already_serves_does_nothing(
    deployments: DeploymentWorld,
) -> None:
    result = await deployments.target().rollback(deployments.live, KEY, deployments.journal)

    assert deployments.mutations() == 0
    assert deployments.words.already_serving in result.message
    assert deployments.serving() == deployments.live


async def test_rollback_twice_with_the_same_key_has_one_effect(
    deployments: DeploymentWorld,
) -> None:
    target = deployments.target()

    first = await target.rollback(deployments.old, KEY, deployments.journal)
    again = await target.rollback(deployments.old, KEY, deployments.journal)

    assert deployments.mutations() == 1
    assert deployments.words.already_serving in again.message
    assert again.external_ids["deploymentId"] == first.external_ids["deploymentId"]


async def test_rollback_redone_by_a_restarted_operator_has_one_effect(
    deployments: DeploymentWorld,
) -> None:
    await deployments.target().rollback(deployments.old, KEY, deployments.journal)
    after_restart = deployments.target()

    result = await after_restart.rollback(deployments.old, KEY, deployments.journal)

    assert deployments.mutations() == 1
    assert deployments.words.already_serving in result.message
    assert deployments.serves_build_of(deployments.old)


# ----- stop and resume traffic -----


async def test_stop_traffic_then_resume_restores_serving(deployments: DeploymentWorld) -> None:
    target = deployments.target()
    plan = await target.plan(None)

    await target.stop_traffic(KEY, plan)
    stopped_between = deployments.traffic_stopped()
    await target.resume_traffic(KEY, plan, deployments.journal)

    assert stopped_between
    assert deployments.serves_traffic()
    assert deployments.mutations() == 2


async def test_stop_traffic_redone_by_a_restarted_operator_still_resumes_as_planned(
    deployments: DeploymentWorld,
) -> None:
    plan = await deployments.target().plan(None)
    await deployments.target().stop_traffic(KEY, plan)

    again = await deployments.target().stop_traffic(KEY, plan)
    await deployments.target().resume_traffic(KEY, plan, deployments.journal)

    assert deployments.words.already_stopped in again.message
    assert deployments.serves_traffic()
    assert deployments.mutations() == 2


async def test_traffic_stopped_by_someone_else_stays_stopped(
    deployments: DeploymentWorld,
) -> None:
    deployments.stop_elsewhere()
    target = deployments.target()
    plan = await target.plan(None)

    await target.stop_traffic(KEY, plan)
    await target.resume_traffic(KEY, plan, deployments.journal)

    assert deployments.plan_says_stopped(plan)
    assert deployments.traffic_stopped()
    assert deployments.mutations() == 0


# ----- candidates -----


async def test_candidates_list_newest_first_marking_live_and_default(
    deployments: DeploymentWorld,
) -> None:
    failed = deployments.add_failed()
    target = deployments.target()

    found = await target.candidates(10)

    assert marks(found) == [
        (failed, False, False), (deployments.live, True, False), (deployments.old, False, True)
    ]  # fmt: skip
    assert (await target.plan(None)).to == deployments.old


async def test_candidates_keep_the_live_and_default_deployments_past_the_limit(
    deployments: DeploymentWorld,
) -> None:
    newer = [deployments.add_failed() for _ in range(4)]

    found = await deployments.target(page_size=1).candidates(2)

    assert marks(found) == [
        (newer[-1], False, False), (newer[-2], False, False),
        (deployments.live, True, False), (deployments.old, False, True),
    ]  # fmt: skip


async def test_candidates_after_a_rollback_mark_what_serves_and_what_plan_would_choose(
    deployments: DeploymentWorld,
) -> None:
    target = deployments.target()
    made = (await target.rollback(deployments.old, KEY, deployments.journal)).external_ids

    found = await target.candidates(10)

    serving = made["deploymentId"]
    new = [serving] if serving not in (deployments.live, deployments.old) else []  # a redeploy
    earlier = [deployments.live] if new else []  # else `old` serves and nothing came before it
    assert [c.id for c in found] == [*new, deployments.live, deployments.old]
    assert [c.id for c in found if c.live] == [serving]
    assert [c.id for c in found if c.default] == earlier
    assert await _plans_to(deployments) == earlier


async def _plans_to(deployments: DeploymentWorld) -> list[str]:
    """What `plan(None)` chooses now, or nothing when it refuses."""
    try:
        return [(await deployments.target().plan(None)).to]
    except errors.PermanentError:
        return []


async def test_candidates_mark_no_default_when_nothing_earlier_served(
    deployments: DeploymentWorld,
) -> None:
    target, only = deployments.solo()

    found = await target.candidates(10)

    assert marks(found) == [(only, True, False)]


async def test_candidates_change_nothing(deployments: DeploymentWorld) -> None:
    await deployments.target().candidates(1)

    assert deployments.mutations() == 0
