"""Fixtures for the telemetry tests: an operator bed whose process serves /metrics, and a scraper.

`MetricsBed` is the e2e `Bed` with two more flags for the operator process (`--metrics-port`,
`--log-format`); the port is a fresh free one per start, so a restarted operator starts with
fresh counters and a test sees exactly what that process counted.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.services import free_port
from tests.apiserver.server import KubeApiServer
from tests.e2e.bed import Bed, open_bed
from tests.metrics.conftest import series

__all__ = ["MetricsBed", "mbed", "named", "sample", "series"]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class MetricsBed(Bed):
    """A Bed whose operator serves /metrics and logs in the chosen format."""

    log_format = "text"
    port = 0

    def flags(self) -> list[str]:
        """A fresh metrics port for each start, and the log format."""
        self.port = free_port()
        return ["--metrics-port", str(self.port), "--log-format", self.log_format]

    def log_path(self) -> Path:
        """The log file of the latest start."""
        return self.workdir / f"operator-{self.starts}.log"

    def scrape(self) -> Samples:
        """Every sample on /metrics now, by name and labels."""
        deadline = time.monotonic() + 10
        while True:
            try:
                url = f"http://127.0.0.1:{self.port}/metrics"
                with urllib.request.urlopen(url, timeout=5) as answer:
                    text = answer.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, or None when the series does not exist."""
    return samples.get((name, frozenset(labels.items())))


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every series of `name`, by labels."""
    return {labels: value for (n, labels), value in samples.items() if n == name}


@pytest.fixture
def mbed(apiserver_with_crds: KubeApiServer, tmp_path: Path) -> Iterator[MetricsBed]:
    """A new namespace and world; the operator (serving /metrics) is not started yet."""
    yield from open_bed(MetricsBed, apiserver_with_crds, tmp_path)
