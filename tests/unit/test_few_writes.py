"""The engine writes its record only where crash safety needs it: before a provider call that
changes something, before a wait, at the end; every other change rides on the next write or
waits at most `linger`. Events never run ahead of the record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from rollback_operator.api.rollback import Phase, RollbackStatus, StepState
from rollback_operator.reconcile import writes
from rollback_operator.reconcile.engine import Engine
from rollback_operator.reconcile.runner import RetryPolicy
from rollback_operator.reconcile.steplist import TRAITS
from sandbox.fakes.host import MemoryHost, SteppingClock
from sandbox.fakes.memory import FakeWorld
from tests.unit.test_engine import DESTRUCTIVE_OPS, Harness

OPS = {  # step, target -> the provider call it makes that changes something
    ("stop-traffic", "frontend"): "frontend.stop_traffic",
    ("stop-traffic", "backend"): "backend.stop_traffic",
    ("safety-backup", "database"): "database.safety_backup",
    ("restore-database", "database"): "database.restore",
    ("restore-storage", "storage"): "storage.restore",
    ("deploy-previous", "frontend"): "frontend.rollback",
    ("deploy-previous", "backend"): "backend.rollback",
    ("instant-rollback", "frontend"): "frontend.rollback",
    ("instant-rollback", "backend"): "backend.rollback",
}


@dataclass
class LoggingHost(MemoryHost):
    """Keeps, in order, each write (with the world's change counts at that moment) and Event."""

    world: FakeWorld = field(default_factory=FakeWorld)
    log: list[tuple[str, Any]] = field(default_factory=list)

    async def save(self, status: RollbackStatus) -> None:
        await super().save(status)
        self.log.append(("write", (self.last, dict(self.world.state["calls"]))))

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        await super().event(warning=warning, reason=reason, message=message)
        self.log.append(("event", (reason, message)))


def _harness(**spec: Any) -> Harness:
    h = Harness(**spec)
    h.host = LoggingHost(world=h.world)
    return h


def _engine(h: Harness, linger: float) -> Engine:
    retry = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
    return Engine(recorder=h.host, controls=h.host, clock=SteppingClock(), reports=h.reports,
                  retry=retry, tick=0.0, linger=linger)  # fmt: skip


async def test_a_quick_rollback_with_instant_providers_is_recorded_in_two_writes() -> None:
    """The instant rollbacks' start (carrying the plan and the start notice's end) and the
    outcome (carrying everything after): the notices only tell, so neither waits for a write of
    its own before it goes out."""
    h = _harness()
    assert await h.run() == Phase.SUCCEEDED
    recorded = [(st.phase, [s.state for s in st.steps]) for st in h.host.statuses]
    pending, running, done = StepState.PENDING, StepState.RUNNING, StepState.SUCCEEDED
    assert recorded == [  # notify-started, instant-rollback x2, verify, report, notify-finished
        (Phase.RUNNING, [done, running, running, pending, pending, pending]),
        (Phase.SUCCEEDED, [done, done, done, done, done, done]),
    ]


async def test_a_full_rollback_writes_once_per_step_that_changes_something_and_at_the_end() -> None:
    h = _harness(mode="full")
    assert await h.run() == Phase.SUCCEEDED
    recorded_first = [s for s in h.host.last.steps if TRAITS[s.name].record_start]
    assert len(h.host.statuses) == len(recorded_first) + 1
    assert all(h.world.calls(op) == 1 for op in DESTRUCTIVE_OPS)


async def test_every_step_that_changes_something_is_written_running_before_its_call() -> None:
    for mode in ("quick", "full"):
        h = _harness(mode=mode)
        assert await h.run() == Phase.SUCCEEDED
        assert isinstance(h.host, LoggingHost)
        writes = [entry for kind, entry in h.host.log if kind == "write"]
        for index, step in enumerate(h.host.last.steps):
            op = OPS.get((step.name, step.target.value if step.target else ""))
            if op is None:
                continue
            first = next(
                c for st, c in writes if st.steps[index:] and st.steps[index].state != "Pending"
            )
            assert first.get(op, 0) == 0, f"{mode}: {step.name} was written after its call"


async def test_an_event_follows_the_write_that_records_what_it_reports() -> None:
    h = _harness(mode="full")
    assert await h.run() == Phase.SUCCEEDED
    assert isinstance(h.host, LoggingHost)
    written: RollbackStatus | None = None
    for kind, entry in h.host.log:
        if kind == "write":
            written = entry[0]
            continue
        reason, message = entry
        assert written is not None, f"{reason} before any write"
        if reason == "StepSucceeded":
            done = [f"{s.name}" for s in written.steps if s.state == StepState.SUCCEEDED]
            assert message.split(":")[0].split(" ")[0] in done, (message, done)
        elif reason in {p.value for p in Phase}:
            assert written.phase != Phase.PENDING, reason


async def test_a_slow_step_is_written_running_within_linger() -> None:
    h = _harness()
    providers = await h.providers()
    verifier: Any = providers.verifier
    verify = verifier.verify
    seen: list[StepState] = []

    async def slow() -> Any:
        await asyncio.sleep(0.3)
        seen.append(next(s.state for s in h.host.last.steps if s.name == "verify"))
        return await verify()

    verifier.verify = slow
    assert await _engine(h, linger=0.05).run(h.rollback, h.policy.spec, providers) == (
        Phase.SUCCEEDED
    )
    assert seen == [StepState.RUNNING]
    assert h.host.last.phase == Phase.SUCCEEDED


@dataclass
class BrokenHost(LoggingHost):
    """While `broken`, a write fails as no API error would (a bug, a connection reset)."""

    broken: bool = False

    async def save(self, status: RollbackStatus) -> None:
        if self.broken:
            raise RuntimeError("connection reset")
        await super().save(status)


async def test_a_failed_linger_write_leaves_the_change_to_the_runs_next_write() -> None:
    h = _harness()
    host = h.host = BrokenHost(world=h.world)
    providers = await h.providers()
    verifier: Any = providers.verifier
    verify = verifier.verify

    async def slow() -> Any:  # only the linger write comes while it runs; it fails
        host.broken = True
        await asyncio.sleep(0.3)
        host.broken = False
        return await verify()

    verifier.verify = slow
    assert await _engine(h, linger=0.05).run(h.rollback, h.policy.spec, providers) == (
        Phase.SUCCEEDED
    )
    assert h.host.last.phase == Phase.SUCCEEDED


async def test_a_change_waits_linger_from_when_it_was_noted_not_from_an_earlier_one() -> None:
    host = MemoryHost()
    retry = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
    w = writes.Writes(recorder=host, retry=retry, controls=host, linger=1.0)
    status = RollbackStatus()
    w.later(status)  # a change, then a write that carries it before linger ran out
    await asyncio.sleep(0.8)
    await w.save(status)
    w.later(status)  # a new change: it may wait a full second for the run's next write
    await asyncio.sleep(0.3)
    assert len(host.statuses) == 1, "the new change was written after 0.3 s, on its own"
    await asyncio.sleep(1.0)
    assert len(host.statuses) == 2  # written on its own once it had waited
    await w.close()


@dataclass
class SlowHost(MemoryHost):
    """A write takes a while to land."""

    async def save(self, status: RollbackStatus) -> None:
        await asyncio.sleep(0.2)
        await super().save(status)


async def test_a_write_in_flight_when_the_run_is_cancelled_lands_and_posts_its_events() -> None:
    # kopf cancels a Rollback's daemon as soon as the watch brings back its final status, which
    # can be before the write's own answer: the write, its bookkeeping and its Event still go
    host = SlowHost()
    retry = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
    w = writes.Writes(recorder=host, retry=retry, controls=host, linger=60.0)
    status = RollbackStatus(phase=Phase.SUCCEEDED)
    w.later(status)
    await w.event(warning=False, reason="Succeeded", message="Rollback succeeded")
    run = asyncio.create_task(w.save(status))
    await asyncio.sleep(0.1)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await asyncio.sleep(0.3)
    assert [s.phase for s in host.statuses] == [Phase.SUCCEEDED]
    assert host.events == [(False, "Succeeded", "Rollback succeeded")]
    await w.close()
