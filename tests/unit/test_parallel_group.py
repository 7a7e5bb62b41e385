"""A parallel group (quick mode's two instant rollbacks) stops and resumes as a unit: when one
step ends the run (the operator stops), its sibling is cancelled and waited for, never left
running detached while a restarted daemon runs it again."""

from __future__ import annotations

import asyncio
from typing import Any

from rollback_operator.api.rollback import Phase
from rollback_operator.providers.base import Providers
from tests.unit.test_engine import Harness


def _slow_backend(providers: Providers, seconds: float) -> None:
    backend: Any = providers.backend
    rollback = backend.rollback

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(seconds)
        return await rollback(*args, **kwargs)

    backend.rollback = slow


async def test_a_stop_in_one_instant_rollback_cancels_its_sibling_and_a_resume_runs_each_once() -> (
    None
):
    h = Harness()
    h.world.inject("frontend.rollback", {"kind": "retryable"})
    h.host.stop_after_pauses = 0  # the retry's pause sees the operator stopping
    providers = await h.providers()
    _slow_backend(providers, 0.3)
    assert await h.engine().run(h.rollback, h.policy.spec, providers) is None
    await asyncio.sleep(0.6)  # a detached sibling would change the world meanwhile
    assert h.world.calls("backend.rollback") == 0
    h.host.stop_after_pauses = None
    assert await h.resume() == Phase.SUCCEEDED
    assert h.world.calls("frontend.rollback") == 1
    assert h.world.calls("backend.rollback") == 1
