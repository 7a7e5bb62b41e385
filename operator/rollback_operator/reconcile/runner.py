"""Runs one step with retries and records each attempt, its start first where that matters.

A step's start is written before its provider call (`Trait.record_start`): a crash then
redoes the step and says so, and an abort knows it may have acted. Verify (it reads), report (it
rewrites its own ConfigMap) and the notices skip that write: a notice only tells people, and a
crash after telling them tells them again whether its start was written or not, so the start
notice goes out without waiting for a write and rides on the first change's, and the last one
on the outcome's. Every step's end rides on the engine's next write (the next
step's start, a wait, the outcome; `reconcile.writes`), which comes before the next step acts.

Two retry layers exist on purpose: the HTTP layer retries briefly inside one call; this one
retries a whole step with a growing delay (honouring Retry-After) and gives up after
`max_attempts`, failing the step with the last reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from rollback_operator.api.rollback import RollbackStatus, StepState, StepStatus
from rollback_operator.providers.base import StepResult
from rollback_operator.providers.errors import PermanentError, ProviderError, RetryableError
from rollback_operator.reconcile.ports import Clock, Controls, Recorder, Stopping
from rollback_operator.reconcile.steplist import TRAITS, VERIFY
from rollback_operator.reconcile.steps import STEPS, StepContext, StepFailed, target_label
from rollback_operator.telemetry import logs

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

RESUMED = "interrupted by an operator restart; redone from its start"


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a step is retried after a transient error."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 60.0
    deadline: float | None = None
    """Seconds one attempt may take (verify: plus its window); None: no limit."""

    def delay(self, attempt: int, hint: float | None) -> float:
        """Seconds to wait before attempt `attempt + 1`."""
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return max(backoff, min(hint or 0.0, self.max_delay * 5))


@dataclass(frozen=True, kw_only=True)
class StepRunner:
    """Executes steps for one rollback."""

    retry: RetryPolicy
    controls: Controls
    clock: Clock
    recorder: Recorder
    save: Callable[[RollbackStatus], Awaitable[None]]
    """Make the status durable now."""
    note: Callable[[RollbackStatus], None]
    """The status changed: the engine's next write carries it."""

    async def run(self, step: StepStatus, ctx: StepContext) -> None:
        """Run `step` until it succeeds, fails for good, or the operator stops."""
        # Each step runs in its own task (`run_together`), so this names it on every log line
        # of this task only, parallel steps included.
        logs.bind_step(step.name, step.target.value if step.target else None)
        resumed = step.state == StepState.RUNNING
        while True:
            step.state = StepState.RUNNING
            step.started_at = step.started_at or self.clock.now()
            step.attempts += 1
            step.message = RESUMED if resumed else f"attempt {step.attempts}"
            resumed = False
            if TRAITS[step.name].record_start:
                await self.save(ctx.status)
            else:
                self.note(ctx.status)
            try:
                result = await self._attempt(step, ctx)
            except RetryableError as error:
                if step.attempts >= self.retry.max_attempts:
                    await self._fail(step, ctx, f"gave up after {step.attempts} attempts: {error}")
                    return
                await self._wait(step, ctx, error)
                continue
            except (StepFailed, PermanentError) as error:
                await self._fail(step, ctx, str(error))
                return
            except ProviderError as error:
                await self._fail(step, ctx, str(error))
                return
            step.state, step.finished_at = StepState.SUCCEEDED, self.clock.now()
            step.message = result.message
            step.external_ids = {**step.external_ids, **result.external_ids}
            self.note(ctx.status)
            await self.recorder.event(
                warning=False,
                reason="StepSucceeded",
                message=f"{step.name}{target_label(step.target)}: {result.message}",
            )
            return

    async def _attempt(self, step: StepStatus, ctx: StepContext) -> StepResult:
        """One attempt of the step, cancelled at its deadline (a transient failure then)."""
        limit = self.retry.deadline
        if limit is not None and step.name == VERIFY:
            limit += ctx.verify_window.total_seconds()
        try:
            async with asyncio.timeout(limit):
                return await STEPS[step.name](step, ctx)
        except TimeoutError:
            raise RetryableError(f"no result within the step deadline ({limit:.0f}s)") from None

    async def _wait(self, step: StepStatus, ctx: StepContext, error: RetryableError) -> None:
        delay = self.retry.delay(step.attempts, error.retry_after)
        step.message = f"attempt {step.attempts} failed: {error}; retrying in {delay:.0f}s"
        await self.save(ctx.status)
        await self.recorder.event(
            warning=True,
            reason="StepRetrying",
            message=f"{step.name}{target_label(step.target)}: {step.message}",
        )
        if await self.controls.pause(delay):
            raise Stopping

    async def _fail(self, step: StepStatus, ctx: StepContext, message: str) -> None:
        step.state, step.finished_at, step.message = StepState.FAILED, self.clock.now(), message
        self.note(ctx.status)
        await self.recorder.event(
            warning=True,
            reason="StepFailed",
            message=f"{step.name}{target_label(step.target)}: {message}",
        )

    @staticmethod
    async def with_retries(
        retry: RetryPolicy,
        controls: Controls,
        call: Callable[P, Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Call a read-only operation, retrying transient errors like a step would."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call(*args, **kwargs)
            except RetryableError as error:
                if attempt >= retry.max_attempts:
                    raise
                if await controls.pause(retry.delay(attempt, error.retry_after)):
                    raise Stopping from error


async def run_together(calls: list[Coroutine[None, None, None]]) -> None:
    """Run the steps of one parallel group as a unit: when one ends the run (the operator
    stops, or anything raises) or the run is cancelled, the others are cancelled and waited
    for before the error goes on. A sibling left running detached would still act while a
    restarted daemon runs it again; cancelled, it stays Running in the record and is redone."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
