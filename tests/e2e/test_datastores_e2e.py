"""Full rollbacks through the operator with the real PostgreSQL and S3 adapters.

A real PostgreSQL 15 and a real S3 API server (moto) stand behind the policy; the operator
restores the database from a dump in S3 and the files to a point in time, then a second
Rollback pinning the safety dump rolls the rollback back.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from mypy_boto3_s3 import S3Client

from sandbox import manifests
from sandbox.services.postgres import PostgresServer
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.db import world
from tests.e2e.bed import Bed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REAL = ("database", "storage")


def _policy(s3_url: str, backups: str, files: str, prefix: str = world.PREFIX) -> dict[str, Any]:
    return manifests.policy(
        targets={
            "frontend": None,
            "backend": None,
            "database": {"postgres": {"backups": {"bucket": backups, "prefix": prefix}}},
            "storage": {"s3": {"bucket": files}},
        },
        objectStore={"endpointUrl": s3_url, "credentialsSecretRef": {"name": "aws"}},
    )


def test_full_rollback_restores_database_and_files_and_the_safety_dump_undoes_it(
    bed: Bed, pg_server: PostgresServer, s3_server: S3Server, s3: S3Client
) -> None:
    db = world.Db(pg_server, f"app_{uuid.uuid4().hex[:8]}")
    pg_server.psql("postgres", f"CREATE DATABASE {db.name}")
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
    bed.apply(manifests.secret("db", {"url": db.url}))
    bed.apply(manifests.secret("aws", {"access-key-id": ACCESS_KEY_ID,
                              "secret-access-key": SECRET_ACCESS_KEY}))  # fmt: skip
    bed.apply(_policy(s3_server.url, backups, files))
    bed.apply(manifests.rollback("restore", mode="full", targets=["database", "storage"]))
    body = bed.wait_for("restore", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=90)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert db.notes() == ["alice", "bob"]
    assert world.objects(s3, files) == {"avatars/alice.png": b"alice-v1"}
    assert versions_before <= world.versions(s3, files)  # no version was deleted
    safety = next(s for s in body["status"]["steps"] if s["name"] == "safety-backup")
    safety_key = safety["externalIds"]["safetyBackup"]
    assert world.read(s3, backups, f"{world.PREFIX}{safety_key}")  # pinnable as it is

    report_step = next(s for s in body["status"]["steps"] if s["name"] == "report")
    assert body["status"]["reportRef"].get("s3Key"), report_step
    report = world.report_key(body)
    assert report.startswith(f"reports/{bed.namespace}/restore/"), report
    assert body["status"]["reportRef"]["s3Key"] == f"s3://{backups}/{report}"
    assert world.read(s3, backups, report)
    pin = safety_key
    bed.apply(manifests.rollback("undo", mode="full", targets=["database"],
                                to={"database": {"backup": pin}}))  # fmt: skip
    undone = bed.wait_for("undo", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=90)
    assert undone["status"]["phase"] == "Succeeded", undone["status"]
    assert db.notes() == ["alice", "bob", "mallory"]
    log = (world.read(s3, backups, "reports/deployment.log") or b"").decode().splitlines()
    ns = bed.namespace
    reports = [f"s3://{backups}/{world.report_key(b)}" for b in (body, undone)]
    assert [line.rsplit(" - ", 2)[-2:] for line in log] == [
        [f"{ns}/restore", reports[0]], [f"{ns}/undo", reports[1]]
    ]  # fmt: skip
    assert " - Rollback to previous version - Reason: High error rates - Succeeded - " in log[0]


def test_with_the_prefix_empty_the_second_rollback_restores_a_dump_not_the_first_ones_report(
    bed: Bed, pg_server: PostgresServer, s3_server: S3Server, s3: S3Client
) -> None:
    """The first rollback leaves `reports/deployment.log` and its report beside the dumps; they
    are the newest uploads, and the second rollback must still take the newest dump."""
    db = world.Db(pg_server, f"app_{uuid.uuid4().hex[:8]}")
    pg_server.psql("postgres", f"CREATE DATABASE {db.name}")
    backups, files = world.make_bucket(s3, versioned=False), world.make_bucket(s3, versioned=True)
    db.seed(["alice"])
    world.put(s3, backups, "backup_20240101.sql.gz", db.dump("plain-gzip"))
    world.put(s3, files, "avatars/alice.png", b"alice-v1")
    bed.start(real=REAL)
    bed.apply(manifests.secret("db", {"url": db.url}))
    bed.apply(manifests.secret("aws", {"access-key-id": ACCESS_KEY_ID,
                              "secret-access-key": SECRET_ACCESS_KEY}))  # fmt: skip
    bed.apply(_policy(s3_server.url, backups, files, prefix=""))
    ended = {"Succeeded", "Failed", "PartiallyFailed"}
    for name in ("first", "second"):
        db.seed(["alice", f"mallory-{name}"])
        bed.apply(manifests.rollback(name, mode="full", targets=["database"]))
        body = bed.wait_for(name, ended, timeout=90)
        assert body["status"]["phase"] == "Succeeded", body["status"]
        assert body["status"]["plan"]["database"]["backup"] == "backup_20240101.sql.gz"
        assert db.notes() == ["alice"]
    assert world.read(s3, backups, "reports/deployment.log")  # it was there to be mistaken
