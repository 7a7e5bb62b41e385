"""Fixtures for the rule tests: one real Prometheus per session, fresh labels per test.

Prometheus must be installed (`apt-get install prometheus`): a missing binary fails the session,
it never skips. Each test writes its series with its own `test` label value, so tests sharing
the server never see each other's data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from sandbox.services.prometheus import PrometheusServer
from tests.metrics.world import Harness, Manifest, MemoryHost, Series


@pytest.fixture
def series(prometheus: PrometheusServer) -> Series:
    """A writer of this test's own series."""
    return Series(prometheus)


MakeHarness = Callable[..., Harness]


@pytest_asyncio.fixture
async def harness() -> AsyncIterator[MakeHarness]:
    """Builds Harnesses (`harness(manifest, host=None)`) and closes their clients afterwards."""
    made: list[Harness] = []

    def make(manifest: Manifest, host: MemoryHost | None = None) -> Harness:
        made.append(Harness(manifest, host))
        return made[-1]

    yield make
    for each in made:
        await each.close()
