"""RestorePoints through the real operator process on a real API server, with real PostgreSQL
and a real S3 server (moto) behind the policy.

A point dumps the database and takes the files' moment together; a Rollback's
`to.restorePoint` then returns both layers to that one moment. Bad input waits with a Stalled
condition and an Event naming the field.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.api import API_VERSION
from sandbox import manifests
from sandbox.services.postgres import PostgresServer
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.db import world
from tests.e2e.bed import Bed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REAL = ("database", "storage")
POINTS = "restorepoints.rollback.mindmate.app"
ENDED = {"Succeeded", "Failed"}


def restore_point(name: str, policy: str = "mindmate", **spec: Any) -> dict[str, Any]:
    """A RestorePoint manifest of `policy`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "RestorePoint",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"policyRef": {"name": policy}, **spec},
    }


def wait_point(bed: Bed, name: str, phases: set[str], timeout: float = 60.0) -> dict[str, Any]:
    """Poll a RestorePoint until its phase is one of `phases`."""
    deadline = time.monotonic() + timeout
    while True:
        body = bed.get(POINTS, name)
        if body.get("status", {}).get("phase") in phases:
            return body
        if time.monotonic() > deadline:
            status = json.dumps(body.get("status"), indent=1)
            raise AssertionError(f"{name}: {status}\n{bed.logs()[-4000:]}")
        time.sleep(0.1)


def stalled_naming(bed: Bed, kind: str, name: str, field: str) -> dict[str, Any]:
    """The Stalled condition of an object, once it names `field`."""
    deadline = time.monotonic() + 30
    while True:
        conditions = bed.get(kind, name).get("status", {}).get("conditions", [])
        found = [c for c in conditions if c["type"] == "Stalled" and c["status"] == "True"]
        if found and field in found[0]["message"]:
            condition: dict[str, Any] = found[0]
            return condition
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: {conditions}\n{bed.logs()[-3000:]}")
        time.sleep(0.1)


def _policy(s3_url: str, dumps: str, files: str, **storage: Any) -> dict[str, Any]:
    return manifests.policy(
        targets={
            "frontend": None,
            "backend": None,
            "database": {"postgres": {"backups": {"bucket": dumps, "prefix": world.PREFIX}}},
            "storage": {"s3": {"bucket": files, **storage}},
        },
        objectStore={"endpointUrl": s3_url, "credentialsSecretRef": {"name": "aws"}},
    )


def _secrets(bed: Bed, db: world.Db) -> None:
    bed.apply(manifests.secret("db", {"url": db.url}))
    bed.apply(manifests.secret("aws", {"access-key-id": ACCESS_KEY_ID,
                              "secret-access-key": SECRET_ACCESS_KEY}))  # fmt: skip


def _db(pg_server: PostgresServer) -> world.Db:
    db = world.Db(pg_server, f"app_{uuid.uuid4().hex[:8]}")
    pg_server.psql("postgres", f"CREATE DATABASE {db.name}")
    return db


def test_a_rollback_to_a_restore_point_returns_database_and_files_to_its_moment(
    bed: Bed, pg_server: PostgresServer, s3_server: S3Server, s3: S3Client
) -> None:
    db, backups = _db(pg_server), world.make_bucket(s3, versioned=False)
    files = world.make_bucket(s3, versioned=True)
    db.seed(["alice", "bob"])
    world.put(s3, files, "avatars/alice.png", b"alice-v1")
    bed.start(real=REAL)
    _secrets(bed, db)
    bed.apply(_policy(s3_server.url, backups, files))
    bed.apply(restore_point("before-42", reason="before release 42"))
    body = wait_point(bed, "before-42", ENDED)
    status = body["status"]
    assert status["phase"] == "Succeeded", status
    assert status["database"]["backup"] == "restore-points/before-42.dump"
    assert status["storage"].get("copy") is None  # versioned: the moment is the point
    assert bed.condition(body, "Ready")["status"] == "True"
    time.sleep(1.1)  # object times have a resolution of one second
    db.seed(["alice", "bob", "mallory"])
    world.put(s3, files, "avatars/alice.png", b"alice-v2-corrupt")
    world.put(s3, files, "avatars/mallory.png", b"mallory")

    to = {"restorePoint": {"name": "before-42"}}
    bed.apply(manifests.rollback("back", mode="full", targets=["database", "storage"], to=to))
    done = bed.wait_for("back", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    plan = done["status"]["plan"]
    assert plan["database"]["backup"] == "restore-points/before-42.dump"
    assert plan["storage"]["source"] == "versions"
    assert db.notes() == ["alice", "bob"]
    assert world.objects(s3, files) == {"avatars/alice.png": b"alice-v1"}


def test_an_unversioned_buckets_point_is_a_dated_copy_a_rollback_restores_from(
    bed: Bed, pg_server: PostgresServer, s3_server: S3Server, s3: S3Client
) -> None:
    db, backups = _db(pg_server), world.make_bucket(s3, versioned=False)
    files = world.make_bucket(s3, versioned=False)
    db.seed(["alice"])
    world.put(s3, files, "a.png", b"a-v1")
    bed.start(real=REAL)
    _secrets(bed, db)
    folders = {"bucket": backups, "prefix": "storage/"}
    bed.apply(_policy(s3_server.url, backups, files, backups=folders))
    bed.apply(restore_point("nightly"))
    status = wait_point(bed, "nightly", ENDED)["status"]
    assert status["phase"] == "Succeeded", status
    copy = status["storage"]["copy"]
    assert copy.startswith("storage/")
    assert copy.endswith("-nightly/")
    assert world.read(s3, backups, f"{copy}a.png") == b"a-v1"
    s3.delete_object(Bucket=files, Key="a.png")  # lost; restored without overwriting anything
    db.seed(["alice", "mallory"])
    to = {"restorePoint": {"name": "nightly"}}
    bed.apply(manifests.rollback("back", mode="full", targets=["database", "storage"], to=to))
    done = bed.wait_for("back", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["plan"]["storage"]["source"] == copy
    assert world.objects(s3, files) == {"a.png": b"a-v1"}
    assert db.notes() == ["alice"]


def test_bad_input_waits_stalled_naming_the_field_and_a_fix_unsticks_it(
    bed: Bed, pg_server: PostgresServer, s3_server: S3Server, s3: S3Client
) -> None:
    db, backups = _db(pg_server), world.make_bucket(s3, versioned=False)
    files = world.make_bucket(s3, versioned=False)  # unversioned, and no backups folder
    db.seed(["alice"])
    bed.start(real=REAL)
    _secrets(bed, db)
    bed.apply(restore_point("early"))  # before its policy exists
    stalled_naming(bed, POINTS, "early", "spec.policyRef.name")
    bed.apply(_policy(s3_server.url, backups, files))
    failed = wait_point(bed, "early", ENDED)
    assert failed["status"]["phase"] == "Failed"
    assert "spec.targets.storage.s3.backups" in failed["status"]["message"]
    reasons = {e["reason"] for e in bed.events_for("early")}
    assert {"InvalidSpec", "Failed"} <= reasons
    to = {"restorePoint": {"name": "later"}}
    bed.apply(manifests.rollback("waits", mode="full", targets=["database"], to=to))
    stalled_naming(bed, "rollback", "waits", "spec.to.restorePoint.name")
    bed.apply(restore_point("later", targets=["database"]))
    assert wait_point(bed, "later", ENDED)["status"]["phase"] == "Succeeded"
    done = bed.wait_for("waits", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["plan"]["database"]["backup"] == "restore-points/later.dump"


def test_the_schedule_takes_points_and_keep_deletes_the_oldest_scheduled_with_their_dumps(
    bed: Bed, pg_server: PostgresServer, s3_server: S3Server, s3: S3Client
) -> None:
    db, backups = _db(pg_server), world.make_bucket(s3, versioned=False)
    files = world.make_bucket(s3, versioned=True)
    db.seed(["alice"])
    bed.start(real=REAL)
    _secrets(bed, db)
    bed.apply(_policy(s3_server.url, backups, files))
    labels = {
        "rollback.mindmate.app/trigger": "schedule",
        "rollback.mindmate.app/policy": "mindmate",
    }
    for name in ("old-1", "old-2"):
        manifest = restore_point(name)
        manifest["metadata"]["labels"] = labels
        bed.apply(manifest)
        assert wait_point(bed, name, ENDED)["status"]["phase"] == "Succeeded"
    bed.apply(restore_point("by-hand"))
    assert wait_point(bed, "by-hand", ENDED)["status"]["phase"] == "Succeeded"
    dumps = f"{world.PREFIX}restore-points/"
    assert {k for k in world.objects(s3, backups) if k.startswith(dumps)} == {
        f"{dumps}{n}.dump" for n in ("old-1", "old-2", "by-hand")
    }

    every_minute = {"schedule": "* * * * *", "keep": {"count": 1}}
    bed.apply(manifests.deep_merge(_policy(s3_server.url, backups, files),
                                   {"spec": {"restorePoints": every_minute}}))  # fmt: skip
    deadline = time.monotonic() + 100
    while True:
        listed = json.loads(bed.cluster.kubectl("get", POINTS, "-o", "json").stdout)["items"]
        names = {p["metadata"]["name"]: p.get("status", {}).get("phase") for p in listed}
        scheduled = [n for n in names if n.startswith("mindmate-")]
        if (
            scheduled
            and names[scheduled[0]] == "Succeeded"
            and set(names) == {*scheduled, "by-hand"}
        ):
            break
        assert time.monotonic() < deadline, f"{names}\n{bed.logs()[-3000:]}"
        time.sleep(0.5)
    assert len(scheduled) == 1
    assert {k for k in world.objects(s3, backups) if k.startswith(dumps)} == {
        f"{dumps}{scheduled[0]}.dump",
        f"{dumps}by-hand.dump",
    }
    reasons = [e["reason"] for e in bed.events_for("mindmate")]
    assert "RestorePointScheduled" in reasons
    assert reasons.count("RestorePointDeleted") == 2
