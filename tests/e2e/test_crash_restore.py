"""Crash safety in the middle of the long steps: SIGKILL during a real database or storage restore.

`test_crash.py` kills the operator between provider calls; here it dies *inside* one. A full
rollback of all four targets runs with the real PostgreSQL and S3 adapters (frontend and backend
stay in-memory fakes that count their calls). The test watches the restore start (the
`pg_restore` backend copying rows; copies appearing as new object versions), SIGKILLs the
operator, checks that nothing was half done or lost, starts it again, and checks the end state:
the data equals the backup, the restore marker is there once, the safety dump exists and predates
the restore, no object version was deleted, and no finished change happened twice.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import md5

import pytest
from mypy_boto3_s3 import S3Client

from sandbox import manifests
from sandbox.services.postgres import PG_BIN, SUPERUSER, PostgresServer
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.db import world
from tests.e2e.bed import Bed, Manifest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REAL = ("database", "storage")
FAKE_CHANGES = [f"{t}.{op}" for t in ("frontend", "backend")
                for op in ("stop_traffic", "rollback", "resume_traffic")]  # fmt: skip
ROWS = 3_000_000  # pg_restore copies rows for about 2-3 s here
FILES = 1_500  # about 4 s of server-side copies on moto
ENDED = {"Succeeded", "Failed", "PartiallyFailed"}


@dataclass
class Scene:
    """One app's data: a database, its backups bucket and a versioned files bucket."""

    bed: Bed
    pg: PostgresServer
    s3: S3Client
    db: world.Db
    backups: str
    files: str
    expected_files: dict[str, str]  # key -> ETag (MD5) at the backup's time
    versions_before: set[tuple[str, str]] = field(default_factory=set)

    def start_rollback(self, s3_url: str) -> None:
        self.versions_before = world.versions(self.s3, self.files)
        self.bed.start(real=REAL)
        self.bed.apply(manifests.secret("db", {"url": self.db.url}))
        aws = {"access-key-id": ACCESS_KEY_ID, "secret-access-key": SECRET_ACCESS_KEY}
        self.bed.apply(manifests.secret("aws", aws))
        targets = {"database": {"postgres": {"backups": {"bucket": self.backups,
                                                         "prefix": world.PREFIX}}},
                   "storage": {"s3": {"bucket": self.files}}}  # fmt: skip
        store = {"endpointUrl": s3_url, "credentialsSecretRef": {"name": "aws"}}
        self.bed.apply(manifests.policy(targets=targets, objectStore=store))
        self.bed.apply(manifests.rollback("crashy", mode="full"))

    def kill_when(self, step: str, ready: Callable[[], bool], timeout: float = 60) -> None:
        """SIGKILL the operator once `step` is Running and `ready()` holds."""
        deadline = time.monotonic() + timeout
        while _step(self.bed.get("rollback", "crashy"), step)["state"] != "Running":
            assert time.monotonic() < deadline, f"{step} never ran\n{self.bed.logs()[-3000:]}"
            time.sleep(0.05)
        while not ready():
            assert time.monotonic() < deadline, f"{step} never got going"
            assert self.bed.process is not None
            assert self.bed.process.poll() is None, self.bed.logs()[-3000:]
        assert self.bed.process is not None
        self.bed.process.kill()
        assert self.bed.wait_exit() == -9

    def finish(self) -> Manifest:
        """Start the operator again and wait for the rollback to end."""
        self.bed.start(real=REAL)
        body = self.bed.wait_for("crashy", ENDED, timeout=120)
        assert body["status"]["phase"] == "Succeeded", body["status"]
        return body


def _step(body: Manifest, name: str) -> Manifest:
    steps: list[Manifest] = body.get("status", {}).get("steps", [])
    return next((s for s in steps if s["name"] == name), {"state": "Pending"})


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# ----- the database -----


def _fill(db: world.Db, rows: int) -> None:
    db.sql(
        "DROP TABLE IF EXISTS items CASCADE; CREATE TABLE items (id bigint PRIMARY KEY,"
        " account int NOT NULL, amount numeric(12,2) NOT NULL, note text NOT NULL);"
        " INSERT INTO items SELECT g, g % 1000, (g % 100000) / 100.0, 'note-' || (g % 9973)"
        f" FROM generate_series(1, {rows}) g; CREATE INDEX items_account ON items (account)"
    )


def _damage(db: world.Db) -> None:
    db.sql("DELETE FROM items WHERE id % 10 = 0; UPDATE items SET amount = 0 WHERE id % 7 = 0;"
           " INSERT INTO items VALUES (-1, 0, 0, 'mallory')")  # fmt: skip


def _fingerprint(pg: PostgresServer, dbname: str) -> str:
    """Row count and an order-independent checksum of every row of `items`."""
    return pg.psql(dbname, "SELECT count(*), sum(hashtextextended(t::text, 0)) FROM items t")


def _copying(pg: PostgresServer, dbname: str) -> bool:
    """Whether a backend is copying rows into `dbname` (the restore has visibly started)."""
    sql = (
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{dbname}'"
        " AND state = 'active' AND query LIKE 'COPY %'"
    )
    return pg.psql("postgres", sql).strip() != "0"


def _wait_idle(pg: PostgresServer, dbname: str) -> None:
    """Wait until the orphaned restore's backend is gone (its stdin closed with the operator)."""
    sql = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{dbname}'"
    deadline = time.monotonic() + 30
    while pg.psql("postgres", sql).strip() != "0":
        assert time.monotonic() < deadline, "the interrupted restore never ended"
        time.sleep(0.1)


def _restored_copy(pg: PostgresServer, dump: bytes) -> str:
    """Fingerprint of a custom-format dump restored into a scratch database."""
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    pg.psql("postgres", f"CREATE DATABASE {name}")
    assert pg.dir is not None
    command = [str(PG_BIN / "pg_restore"), "-h", str(pg.dir), "-p", str(pg.port),
               "-U", SUPERUSER, "-d", name, "--exit-on-error"]  # fmt: skip
    subprocess.run(command, input=dump, check=True, capture_output=True)
    try:
        return _fingerprint(pg, name)
    finally:
        pg.psql("postgres", f"DROP DATABASE {name}")


# ----- the files -----


def _put_all(s3: S3Client, bucket: str, contents: dict[str, bytes | None]) -> None:
    """Write (bytes) or delete (None) many keys in parallel."""

    def one(item: tuple[str, bytes | None]) -> None:
        key, body = item
        if body is None:
            s3.delete_object(Bucket=bucket, Key=key)
        else:
            world.put(s3, bucket, key, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, contents.items()))


def _etags(s3: S3Client, bucket: str) -> dict[str, str]:
    return {
        item["Key"]: item["ETag"].strip('"')
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    }


def _added_per_key(before: set[tuple[str, str]], after: set[tuple[str, str]]) -> Counter[str]:
    return Counter(key for key, _ in after - before)


@pytest.fixture
def scene(bed: Bed, pg_server: PostgresServer, s3: S3Client) -> Scene:
    db = world.Db(pg_server, f"app_{uuid.uuid4().hex[:8]}")
    pg_server.psql("postgres", f"CREATE DATABASE {db.name}")
    backups, files = world.make_bucket(s3, versioned=False), world.make_bucket(s3, versioned=True)
    return Scene(bed, pg_server, s3, db, backups, files, {})


def _prepare(scene: Scene, rows: int, files: int) -> tuple[str, str]:
    """Data, a backup of it, then changes after it; the fingerprints (backup, today)."""
    old = {f"files/{i:05d}.bin": f"v1 of {i}".encode() for i in range(files)}
    _put_all(scene.s3, scene.files, dict(old))
    scene.expected_files = {key: md5(body).hexdigest() for key, body in old.items()}
    _fill(scene.db, rows)
    backup_print = _fingerprint(scene.pg, scene.db.name)
    dump = scene.db.dump("custom")
    world.put(scene.s3, scene.backups, f"{world.PREFIX}nightly.dump", dump)
    world.next_second()  # everything from here on is after the backup (the storage as-of)
    _damage(scene.db)
    changes: dict[str, bytes | None] = {k: None if i % 10 == 9 else b"v2 " + v
                                        for i, (k, v) in enumerate(old.items())}  # fmt: skip
    changes |= {f"files/new-{j:03d}.bin": b"uploaded later" for j in range(max(files // 30, 1))}
    _put_all(scene.s3, scene.files, changes)
    return backup_print, _fingerprint(scene.pg, scene.db.name)


def _check_end_state(scene: Scene, body: Manifest, backup_print: str, today_print: str) -> None:
    """Everything the crash must not have broken, after the rollback Succeeded."""
    status = body["status"]
    uid = body["metadata"]["uid"]
    # the database equals the backup, and the marker records the one completed restore
    assert _fingerprint(scene.pg, scene.db.name) == backup_print
    rows = scene.db.sql(
        "SELECT key, backup, to_char(finished_at AT TIME ZONE 'UTC',"
        ' \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\') FROM rollback_operator.restores'
    )
    marker = [r.split("|") for r in rows.splitlines()]
    assert [m[:2] for m in marker] == [[f"{uid}/restore-database/database", "nightly.dump"]]
    # exactly one safety dump, written before the restore began, holding today's data
    safety_name = _step(body, "safety-backup")["externalIds"]["safetyBackup"]
    listed = scene.s3.list_objects_v2(Bucket=scene.backups, Prefix=f"{world.PREFIX}safety/")
    dumps = listed.get("Contents", [])
    assert [d["Key"] for d in dumps] == [f"{world.PREFIX}{safety_name}"]
    restore = _step(body, "restore-database")
    assert dumps[0]["LastModified"] <= _when(restore["startedAt"])
    assert dumps[0]["LastModified"] < _when(marker[0][2])
    safety = world.read(scene.s3, scene.backups, dumps[0]["Key"])
    assert safety is not None
    assert _restored_copy(scene.pg, safety) == today_print
    # the files are as they were at the backup's time; no version deleted, none written twice
    assert _etags(scene.s3, scene.files) == scene.expected_files
    after = world.versions(scene.s3, scene.files)
    assert scene.versions_before <= after
    # every key differed from the past: each got exactly one copy or delete marker, no more
    added = _added_per_key(scene.versions_before, after)
    assert added == Counter({key for key, _ in scene.versions_before}), "a key written twice"
    # the fakes: every traffic and deploy change happened exactly once, two notices
    fakes = scene.bed.world()
    assert {op: fakes.calls(op) for op in FAKE_CHANGES} == dict.fromkeys(FAKE_CHANGES, 1)
    keys = [n["key"] for n in fakes.state["notices"]]
    assert len(keys) == len(set(keys)) == 2
    report = f"s3://{scene.backups}/{world.report_key(body)}"
    assert status["reportRef"]["s3Key"] == report


# ----- the tests -----


def test_sigkill_during_the_database_restore_loses_nothing_and_restores_once(
    scene: Scene, s3_server: S3Server
) -> None:
    backup_print, today_print = _prepare(scene, rows=ROWS, files=30)
    scene.start_rollback(s3_server.url)
    scene.kill_when("restore-database", lambda: _copying(scene.pg, scene.db.name))
    _wait_idle(scene.pg, scene.db.name)
    # the cut-short restore ran in one transaction: today's data is intact, no marker
    assert _fingerprint(scene.pg, scene.db.name) == today_print
    assert scene.db.markers() == []
    body = scene.finish()
    assert _step(body, "restore-database")["attempts"] >= 2
    _check_end_state(scene, body, backup_print, today_print)


def test_sigkill_during_the_storage_restore_deletes_no_version_and_copies_once(
    scene: Scene, s3_server: S3Server
) -> None:
    backup_print, today_print = _prepare(scene, rows=1_000, files=FILES)
    first = "files/000"  # the first hundred keys: copies go in key order
    start = len(world.versions(scene.s3, scene.files))
    watched = len(_versions_under(scene.s3, scene.files, first))
    scene.start_rollback(s3_server.url)
    scene.kill_when(
        "restore-storage",
        lambda: len(_versions_under(scene.s3, scene.files, first)) >= watched + 20,
    )
    time.sleep(1.0)  # copies already sent to the server land
    partial = len(world.versions(scene.s3, scene.files)) - start
    assert 0 < partial < len(scene.expected_files), "the kill was not in the middle"
    body = scene.finish()
    assert _step(body, "restore-storage")["attempts"] >= 2
    _check_end_state(scene, body, backup_print, today_print)


def _versions_under(s3: S3Client, bucket: str, prefix: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            found.add((item["Key"], item["VersionId"]))
    return found
