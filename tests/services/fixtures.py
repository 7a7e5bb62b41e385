"""Session fixtures for the real services: one PostgreSQL 15, one S3 server and one Prometheus
per test run.

Registered in tests/conftest.py so every folder shares the same servers; tests isolate
themselves with their own databases, buckets and series labels.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.api.targets import ObjectStore
from rollback_operator.providers.objectstore import s3api
from sandbox.services.postgres import PostgresServer
from sandbox.services.prometheus import PrometheusServer
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 server for the whole run."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3 API server (moto) for the whole run."""
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusServer]:
    """A real Prometheus for the whole run (samples arrive by remote write)."""
    server = PrometheusServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3(s3_server: S3Server) -> S3Client:
    """A boto3 client of that server."""
    store = ObjectStore(region="us-east-1", endpoint_url=s3_server.url)
    return s3api.client(store, s3api.Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY))
