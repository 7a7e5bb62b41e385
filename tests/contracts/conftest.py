"""The tables of the contract suite: every implementation of a provider Protocol, one row each.

Adding a provider means adding one row here: its name (the test id) and how to open its world
(`tests.contracts.worlds`). A row marked `hosted` is an adapter talking HTTP to a fake server; it
also runs the claims about the wire (`test_hosted_deployment_target.py`). Servers a row needs
(PostgreSQL, S3) are the session's, asked for only when that row runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import pytest
from mypy_boto3_s3 import S3Client

from sandbox.services.postgres import PostgresServer
from tests.contracts import datastores, hosted, memory
from tests.contracts.worlds import DatabaseWorld, DeploymentWorld, HostedWorld, StorageWorld
from tests.providers.conftest import VirtualTime

W = TypeVar("W", covariant=True)


@dataclass(frozen=True)
class Row(Generic[W]):
    """One implementation of a Protocol: how to open a world around it."""

    name: str
    open: Callable[[pytest.FixtureRequest], AbstractContextManager[W]]
    hosted: bool = False


def _vercel(_: pytest.FixtureRequest) -> AbstractContextManager[HostedWorld]:
    return hosted.vercel_world(VirtualTime())


def _railway(_: pytest.FixtureRequest) -> AbstractContextManager[HostedWorld]:
    return hosted.railway_world(VirtualTime())


def _postgres(request: pytest.FixtureRequest) -> AbstractContextManager[DatabaseWorld]:
    server = cast(PostgresServer, request.getfixturevalue("pg_server"))
    return datastores.postgres_world(server, cast(S3Client, request.getfixturevalue("s3")))


def _s3(request: pytest.FixtureRequest) -> AbstractContextManager[StorageWorld]:
    return nullcontext(datastores.s3_world(cast(S3Client, request.getfixturevalue("s3"))))


DEPLOYMENT_TARGETS: tuple[Row[DeploymentWorld], ...] = (
    Row("memory-frontend", lambda _: nullcontext(memory.MemoryDeploymentWorld("frontend"))),
    Row("memory-backend", lambda _: nullcontext(memory.MemoryDeploymentWorld("backend"))),
    Row("vercel", _vercel, hosted=True),
    Row("railway", _railway, hosted=True),
)

DATABASES: tuple[Row[DatabaseWorld], ...] = (
    Row("memory", lambda _: nullcontext(memory.MemoryDatabaseWorld())),
    Row("postgres", _postgres),
)

STORAGES: tuple[Row[StorageWorld], ...] = (
    Row("memory", lambda _: nullcontext(memory.MemoryStorageWorld())),
    Row("s3", _s3),
)


def _params(table: tuple[Row[object], ...], *, hosted_only: bool = False) -> list[object]:
    return [pytest.param(row, id=row.name) for row in table if row.hosted or not hosted_only]


@pytest.fixture(params=_params(DEPLOYMENT_TARGETS))
def deployments(request: pytest.FixtureRequest) -> Iterator[DeploymentWorld]:
    """Each deployment target's world in turn."""
    row: Row[DeploymentWorld] = request.param
    with row.open(request) as world:
        yield world


@pytest.fixture(params=_params(DEPLOYMENT_TARGETS, hosted_only=True))
def hosted_deployments(request: pytest.FixtureRequest) -> Iterator[HostedWorld]:
    """Each hosted deployment target's world in turn (a hosted row opens a `HostedWorld`)."""
    row: Row[DeploymentWorld] = request.param
    with row.open(request) as world:
        yield cast(HostedWorld, world)


@pytest.fixture(params=_params(DATABASES))
def databases(request: pytest.FixtureRequest) -> Iterator[DatabaseWorld]:
    """Each database's world in turn."""
    row: Row[DatabaseWorld] = request.param
    with row.open(request) as world:
        yield world


@pytest.fixture(params=_params(STORAGES))
def storages(request: pytest.FixtureRequest) -> Iterator[StorageWorld]:
    """Each storage's world in turn."""
    row: Row[StorageWorld] = request.param
    with row.open(request) as world:
        yield world
