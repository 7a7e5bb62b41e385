"""A status write the API server refuses for a while (409, 429, 5xx) is retried inside the run:
the daemon does not crash, no step runs twice, and the rollback ends as it would have."""

from __future__ import annotations

from dataclasses import dataclass

from rollback_operator.api.rollback import Phase, RollbackStatus, StepState
from rollback_operator.providers.errors import RetryableError
from sandbox.fakes.host import MemoryHost
from tests.unit.test_engine import DESTRUCTIVE_OPS, Harness


@dataclass
class FlakyHost(MemoryHost):
    """Refuses two of every three status writes, as a busy API server might (429)."""

    writes: int = 0
    refused: int = 0

    async def save(self, status: RollbackStatus) -> None:
        self.writes += 1
        if self.writes % 3:
            self.refused += 1
            raise RetryableError("rollbacks/rb-1: HTTP 429", provider="kubernetes")
        await super().save(status)


async def test_a_full_rollback_survives_refused_status_writes_and_runs_each_step_once() -> None:
    h = Harness(mode="full")
    h.host = FlakyHost()
    assert await h.run() == Phase.SUCCEEDED
    assert h.host.refused > 10
    assert all(state == StepState.SUCCEEDED for _, _, state in h.steps())
    assert all(h.world.calls(op) == 1 for op in DESTRUCTIVE_OPS)
    assert all(step.attempts == 1 for step in h.host.last.steps)


async def test_an_operator_stopping_while_a_status_write_is_refused_ends_the_run_quietly() -> None:
    h = Harness()
    h.host = FlakyHost(stop_after_pauses=0)
    assert await h.run() is None
