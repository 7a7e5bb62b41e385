"""Fixtures of the fault matrix: the session's recorder and the real servers behind proxies.

The recorder's rows are merged into `ROLLBACK_FAULT_MATRIX` (else `fault-matrix.json` in the
session's temp dir) when the session ends; `python -m tests.faults.table FILE --write` turns
that file into the Fault matrix section of docs/reliability.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.fakes.fault_proxy import FaultProxy
from sandbox.services.prometheus import PrometheusServer
from sandbox.services.s3 import S3Server
from tests.faults.matrix import Recorder

ENV = "ROLLBACK_FAULT_MATRIX"


@pytest.fixture(scope="session")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    """Where every fault test puts what it saw; written out at the end of the session."""
    found = Recorder()
    yield found
    target = os.environ.get(ENV)
    path = Path(target) if target else tmp_path_factory.getbasetemp() / "fault-matrix.json"
    found.merge_into(path)
    print(f"\nfault matrix: {len(found.rows())} outcomes written to {path}")


@pytest.fixture
def s3_proxy(s3_server: S3Server) -> Iterator[tuple[FaultProxy, str]]:
    """A fault proxy in front of the session's S3 server, and its URL."""
    proxy = FaultProxy(s3_server.url, shape="s3")
    with proxy.serve() as running:
        yield proxy, running.url


@pytest.fixture
def prometheus_proxy(prometheus: PrometheusServer) -> Iterator[tuple[FaultProxy, str]]:
    """A fault proxy in front of the session's Prometheus, and its URL."""
    proxy = FaultProxy(prometheus.url, shape="prometheus")
    with proxy.serve() as running:
        yield proxy, running.url
