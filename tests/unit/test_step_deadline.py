"""Each attempt of a step has a deadline: a provider that never answers (a stalled S3 or
database) cannot hold a step, and traffic with it, for an unbounded time."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from rollback_operator.api.rollback import Phase, StepState
from rollback_operator.providers.base import Providers
from tests.unit.test_engine import Harness


def _stall_backend(providers: Providers, times: int) -> None:
    """The backend's rollback hangs (no answer, no error) for its first `times` calls."""
    backend: Any = providers.backend
    rollback, calls = backend.rollback, [0]

    async def stalled(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] <= times:
            await asyncio.Event().wait()
        return await rollback(*args, **kwargs)

    backend.rollback = stalled


async def _run(h: Harness, stalls: int) -> Phase | None:
    providers = await h.providers()
    _stall_backend(providers, stalls)
    engine = h.engine()
    engine = replace(engine, retry=replace(engine.retry, deadline=0.2))
    return await asyncio.wait_for(engine.run(h.rollback, h.policy.spec, providers), 10)


def _backend_step(h: Harness) -> Any:
    return next(s for s in h.host.last.steps if s.name == "instant-rollback" and s.target and
                s.target.value == "backend")  # fmt: skip


async def test_a_stalled_attempt_is_cancelled_at_its_deadline_and_tried_again() -> None:
    h = Harness()
    assert await _run(h, stalls=1) == Phase.SUCCEEDED
    assert _backend_step(h).attempts == 2
    assert any("step deadline" in message for _, _, message in h.host.events)


async def test_a_step_that_never_answers_fails_after_its_attempts_instead_of_hanging() -> None:
    h = Harness()
    assert await _run(h, stalls=100) in {Phase.FAILED, Phase.PARTIALLY_FAILED}
    step = _backend_step(h)
    assert step.state == StepState.FAILED
    assert "step deadline" in (step.message or "")
    assert h.world.calls("backend.rollback") == 0
