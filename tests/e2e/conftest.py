"""Fixtures for end-to-end tests: a Bed with the operator already running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.bed import Bed
from tests.kube.cluster import EmulatedCluster


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    """A fresh cluster and world; the operator is not started yet."""
    with EmulatedCluster(tmp_path / "cluster") as cluster:
        test_bed = Bed(cluster, tmp_path)
        try:
            yield test_bed
        finally:
            test_bed.stop()
