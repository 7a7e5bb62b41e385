"""A slow or unreachable notice channel never holds a rollback: the start notice comes first,
but the rollback acts once `notice_patience` has passed, and says which channel did not answer.

A Slack outage is often part of the very incident being rolled back; before this, a start
notice that hung held the first change for the HTTP layer's whole budget per notifier.
"""

from __future__ import annotations

import asyncio

from rollback_operator.api.rollback import Phase, StepState
from rollback_operator.providers.base import Journal, Notice, StepResult
from rollback_operator.reconcile.engine import Engine
from rollback_operator.reconcile.runner import RetryPolicy
from sandbox.fakes.host import SteppingClock
from tests.unit.test_engine import Harness


class Silent:
    """A notifier that never answers the start notice and answers the end one."""

    def __init__(self, name: str) -> None:
        self.name, self.told = name, list[str]()

    async def notify(self, notice: Notice, key: str, journal: Journal) -> StepResult:
        if notice.kind == "started":
            await asyncio.Event().wait()
        self.told.append(notice.kind)
        return StepResult("told")


class Prompt:
    """A notifier that answers at once."""

    def __init__(self, name: str) -> None:
        self.name, self.told = name, list[str]()

    async def notify(self, notice: Notice, key: str, journal: Journal) -> StepResult:
        self.told.append(notice.kind)
        return StepResult("told")


def _engine(h: Harness, patience: float) -> Engine:
    return Engine(
        recorder=h.host,
        controls=h.host,
        clock=SteppingClock(),
        reports=h.reports,
        retry=RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0),
        tick=0.0,
        notice_patience=patience,
    )


async def test_a_start_notice_that_never_answers_does_not_hold_the_rollback() -> None:
    h = Harness()
    providers = await h.providers()
    prompt, silent = Prompt("pagerduty"), Silent("slack")
    providers.notifiers = [prompt, silent]
    run = _engine(h, patience=0.2).run(h.rollback, h.policy.spec, providers)
    assert await asyncio.wait_for(run, 10.0) == Phase.SUCCEEDED
    assert h.world.state["frontend"]["live"] == "dpl_old"
    assert h.world.state["backend"]["live"] == "d-old"
    notice = next(s for s in h.host.last.steps if s.name == "notify-started")
    assert notice.state == StepState.FAILED
    assert notice.message == (
        "slack: no answer within 0.2s; the rollback went on without waiting for it"
    )
    assert prompt.told == ["started", "finished"]  # told before the silent one was waited for
    assert silent.told == ["finished"]  # the end notice still goes to every channel


async def test_a_start_notice_within_its_patience_is_waited_for() -> None:
    h = Harness()
    providers = await h.providers()
    prompt = Prompt("slack")
    providers.notifiers = [prompt]
    assert await _engine(h, patience=5.0).run(h.rollback, h.policy.spec, providers) == (
        Phase.SUCCEEDED
    )
    notice = next(s for s in h.host.last.steps if s.name == "notify-started")
    assert notice.state == StepState.SUCCEEDED
    assert notice.message == "1 notifier(s) told"
    assert prompt.told == ["started", "finished"]
