"""Pytest fixtures for the emulated Kubernetes API, for ``tests/conftest.py`` to register.

The emulator is what `make demo` embeds; the suites run on the real API server
(`tests/apiserver`), so these serve only the emulator's own tests. ``session_cluster`` runs it
as a process with a kubeconfig (for kubectl); ``kube_emulator`` serves it inside the test's
event loop, which allows assertions on ``kube_emulator.objects[...]`` and on the recorded
requests.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from sandbox.kube.cluster import EmulatedCluster
from sandbox.kube.emulator import RealisticEmulator, running_emulator


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmulatedCluster]:
    """A fresh emulator process for one test; its files live in ``tmp_path / "cluster"``."""
    with EmulatedCluster(tmp_path / "cluster") as emulated:
        yield emulated


@pytest.fixture(scope="session")
def session_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedCluster]:
    """One emulator process shared by the whole session: use unique object names."""
    with EmulatedCluster(tmp_path_factory.mktemp("session-cluster")) as emulated:
        yield emulated


@pytest_asyncio.fixture
async def kube_emulator() -> AsyncIterator[RealisticEmulator]:
    """An emulator served on a free port in the test's loop; ``str(kube_emulator.url)``."""
    async with running_emulator() as emulator:
        yield emulator
