"""A rollback's Events are what a person needs from `kubectl describe`: the start, every warning,
the end, the waits on people and on other rollbacks. Normal Events that only repeat the status
(a step done, a phase passed through within one write) are logged, not posted: each Event is a
write the API server keeps for an hour, ten of them per quick rollback before."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from rollback_operator.api.rollback import TERMINAL_PHASES, Phase, RollbackStatus
from tests.unit.test_engine import Harness


def _posted(h: Harness) -> list[tuple[str, str]]:
    return [("Warning" if warning else "Normal", reason) for warning, reason, _ in h.host.events]


async def test_a_quick_rollback_posts_its_start_and_its_end_only() -> None:
    h = Harness()
    assert await h.run() == Phase.SUCCEEDED
    assert _posted(h) == [("Normal", "Running"), ("Normal", "Succeeded")]
    end = h.host.events[-1][2]
    assert end == "Rollback succeeded: instant-rollback (frontend), instant-rollback (backend)"


async def test_a_full_rollback_posts_its_start_and_its_end_only() -> None:
    h = Harness(mode="full")
    assert await h.run() == Phase.SUCCEEDED
    assert _posted(h) == [("Normal", "Running"), ("Normal", "Succeeded")]


async def test_what_is_not_posted_is_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    with caplog.at_level(logging.INFO):
        assert await h.run() == Phase.SUCCEEDED
    logged = [r.getMessage().split(":")[0] for r in caplog.records]
    assert logged.count("StepSucceeded") == len(h.host.last.steps)
    assert {"Planning", "Queued", "Verifying"} <= set(logged)


async def test_every_warning_is_posted() -> None:
    h = Harness()
    h.world.inject("backend.rollback", {"kind": "rate-limited", "retry_after": 0})
    h.world.inject("frontend.rollback", *[{"kind": "retryable"}] * 3)
    assert await h.run() == Phase.PARTIALLY_FAILED
    warnings = [reason for kind, reason in _posted(h) if kind == "Warning"]
    assert warnings.count("StepRetrying") == 3  # backend once, frontend twice
    assert warnings[-2:] == ["StepFailed", "PartiallyFailed"]
    assert ("Normal", "Running") in _posted(h)


async def test_a_wait_for_approval_and_the_approval_are_posted() -> None:
    h = Harness(requireApproval=True)
    h.host.on_pause = ["approve:bob"]
    assert await h.run() == Phase.SUCCEEDED
    assert _posted(h) == [
        ("Normal", "AwaitingApproval"),
        ("Normal", "Queued"),  # "Approved by bob"
        ("Normal", "Running"),
        ("Normal", "Succeeded"),
    ]
    assert h.host.events[1][2] == "Approved by bob"


async def test_a_wait_behind_other_rollbacks_is_posted_with_its_position() -> None:
    h = Harness()
    h.host.queue = [2, 1]
    assert await h.run() == Phase.SUCCEEDED
    queued = [message for _, reason, message in h.host.events if reason == "Queued"]
    assert queued == ["Queued at position 2", "Queued at position 1"]  # one write, one Event


async def test_the_end_is_posted_even_when_the_run_is_stopped_as_its_last_write_lands() -> None:
    """kopf stops a Rollback's daemon once the watch brings back its final status, which can
    come before the daemon hears the write's answer: the end's Event still goes out."""
    h = Harness()
    saved = h.host.save
    run: asyncio.Task[Phase | None] | None = None

    async def save_then_stop(status: RollbackStatus) -> None:
        await saved(status)
        if status.phase in TERMINAL_PHASES and run is not None:
            run.cancel()  # what kopf does when it sees the final status

    h.host.save = save_then_stop  # type: ignore[method-assign]
    run = asyncio.create_task(h.run())
    with contextlib.suppress(asyncio.CancelledError):
        await run
    for _ in range(10):
        await asyncio.sleep(0)

    assert h.host.last.phase == Phase.SUCCEEDED
    assert _posted(h) == [("Normal", "Running"), ("Normal", "Succeeded")]
