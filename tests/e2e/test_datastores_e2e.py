"""Full rollbacks through the operator with the real PostgreSQL and S3 adapters.

A real PostgreSQL 15 and a real S3 API server (moto) stand behind the policy; the operator
restores the database from a dump in S3 and the files to a point in time, then a second
Rollback pinning the safety dump rolls the rollback back.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.api.policy import ObjectStore
from rollback_operator.providers import objectstore
from tests import builders
from tests.db import world
from tests.e2e.bed import Bed
from tests.services.postgres import PostgresServer
from tests.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REAL = ("database", "storage")


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server) -> S3Client:
    store = ObjectStore(region="us-east-1", endpoint_url=s3_server.url)
    return objectstore.client(store, objectstore.Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY))


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}


def _policy(s3_url: str, backups: str, files: str) -> dict[str, Any]:
    return builders.policy(
        targets={
            "frontend": None,
            "backend": None,
            "database": {"postgres": {"backups": {"bucket": backups, "prefix": world.PREFIX}}},
            "storage": {"s3": {"bucket": files}},
        },
        objectStore={"endpointUrl": s3_url, "credentialsSecretRef": {"name": "aws"}},
    )


def test_full_rollback_restores_database_and_files_and_the_safety_dump_undoes_it(
    bed: Bed, pg: PostgresServer, s3_server: S3Server, s3: S3Client
) -> None:
    db = world.Db(pg, f"app_{uuid.uuid4().hex[:8]}")
    pg.psql("postgres", f"CREATE DATABASE {db.name}")
    backups, files = world.make_bucket(s3, versioned=False), world.make_bucket(s3, versioned=True)
    db.seed(["alice", "bob"])
    world.put(s3, files, "avatars/alice.png", b"alice-v1")
    world.put(s3, backups, f"{world.PREFIX}nightly.dump", db.dump("custom"))
    time.sleep(1.1)  # object times have a resolution of one second
    db.seed(["alice", "bob", "mallory"])
    world.put(s3, files, "avatars/alice.png", b"alice-v2-corrupt")
    world.put(s3, files, "avatars/mallory.png", b"mallory")
    versions_before = world.versions(s3, files)

    bed.start(real=REAL)
    bed.apply(_secret("db", {"url": db.url}))
    bed.apply(_secret("aws", {"access-key-id": ACCESS_KEY_ID,
                              "secret-access-key": SECRET_ACCESS_KEY}))  # fmt: skip
    bed.apply(_policy(s3_server.url, backups, files))
    bed.apply(builders.rollback("restore", mode="full", targets=["database", "storage"]))
    body = bed.wait_for("restore", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=90)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert db.notes() == ["alice", "bob"]
    assert world.objects(s3, files) == {"avatars/alice.png": b"alice-v1"}
    assert versions_before <= world.versions(s3, files)  # no version was deleted
    safety = next(s for s in body["status"]["steps"] if s["name"] == "safety-backup")
    safety_key = safety["externalIds"]["safetyBackup"]
    assert world.read(s3, backups, f"{world.PREFIX}{safety_key}")  # pinnable as it is

    pin = safety_key
    bed.apply(builders.rollback("undo", mode="full", targets=["database"],
                                to={"database": {"backup": pin}}))  # fmt: skip
    undone = bed.wait_for("undo", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=90)
    assert undone["status"]["phase"] == "Succeeded", undone["status"]
    assert db.notes() == ["alice", "bob", "mallory"]
