"""The adapters' restore point calls against real PostgreSQL and a real S3 server (moto).

A point's dump is a restorable pg_dump archive beside the backups, written once per key and
never over another point's; a point of an unversioned bucket is a server-side copy in a dated
folder that the storage restore reads back; dropping either deletes what it wrote and nothing
else.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.api.targets import BackupLocation
from rollback_operator.providers.errors import PermanentError
from sandbox.services.postgres import PostgresServer
from tests.db import world

pytestmark = pytest.mark.slow
KEY = "uid-1/restore-point/database"


def _db(pg_server: PostgresServer) -> world.Db:
    db = world.Db(pg_server, f"app_{uuid.uuid4().hex[:8]}")
    pg_server.psql("postgres", f"CREATE DATABASE {db.name}")
    return db


async def test_a_point_dump_restores_the_database_as_it_was(
    pg_server: PostgresServer, s3: S3Client
) -> None:
    db, backups = _db(pg_server), world.make_bucket(s3, versioned=False)
    db.seed(["alice", "bob"])
    adapter = world.pg_adapter(db, s3, backups)
    dump = await adapter.dump_point("before-42", KEY)
    assert dump.backup == "restore-points/before-42.dump"
    assert (world.read(s3, backups, f"{world.PREFIX}{dump.backup}") or b"").startswith(b"PGDMP")
    db.seed(["alice", "bob", "mallory"])
    await adapter.restore(dump.backup, "rb-1/restore-database/database")
    assert db.notes() == ["alice", "bob"]


async def test_a_point_dump_is_taken_once_per_key_and_never_over_another_points(
    pg_server: PostgresServer, s3: S3Client
) -> None:
    db, backups = _db(pg_server), world.make_bucket(s3, versioned=False)
    db.seed(["alice"])
    adapter = world.pg_adapter(db, s3, backups)
    first = await adapter.dump_point("nightly", KEY)
    db.seed(["alice", "bob"])
    again = await adapter.dump_point("nightly", KEY)
    assert again.size == first.size  # the dump already there, not a second one
    before = world.read(s3, backups, f"{world.PREFIX}{first.backup}")
    with pytest.raises(PermanentError, match="another restore point wrote"):
        await adapter.dump_point("nightly", "uid-2/restore-point/database")
    assert world.read(s3, backups, f"{world.PREFIX}{first.backup}") == before


async def test_a_point_dump_is_never_the_default_backup(
    pg_server: PostgresServer, s3: S3Client
) -> None:
    db, backups = _db(pg_server), world.make_bucket(s3, versioned=False)
    db.seed(["alice"])
    world.put(s3, backups, f"{world.PREFIX}nightly.dump", db.dump("custom"))
    adapter = world.pg_adapter(db, s3, backups)
    await adapter.dump_point("newer", KEY)
    assert (await adapter.plan(None)).backup == "nightly.dump"


async def test_dropping_a_point_dump_deletes_only_the_one_its_key_wrote(
    pg_server: PostgresServer, s3: S3Client
) -> None:
    db, backups = _db(pg_server), world.make_bucket(s3, versioned=False)
    db.seed(["alice"])
    world.put(s3, backups, f"{world.PREFIX}nightly.dump", db.dump("custom"))
    adapter = world.pg_adapter(db, s3, backups)
    dump = await adapter.dump_point("p1", KEY)
    assert not await adapter.drop_point("p1", "uid-2/restore-point/database")
    assert world.read(s3, backups, f"{world.PREFIX}{dump.backup}")
    assert await adapter.drop_point("p1", KEY)
    assert world.read(s3, backups, f"{world.PREFIX}{dump.backup}") is None
    assert not await adapter.drop_point("p1", KEY)  # gone: nothing to do
    assert world.read(s3, backups, f"{world.PREFIX}nightly.dump")


async def test_a_versioned_buckets_point_is_its_moment_and_copies_nothing(s3: S3Client) -> None:
    files = world.make_bucket(s3, versioned=True)
    world.put(s3, files, "a.png", b"a")
    at = datetime.now(UTC)
    point = await world.s3_adapter(s3, files).snapshot(at, "p1", "uid-1/restore-point/storage")
    assert (point.as_of, point.copy, point.objects) == (at, None, 0)
    assert set(world.objects(s3, files)) == {"a.png"}


async def test_an_unversioned_buckets_point_is_a_dated_copy_the_restore_reads_back(
    s3: S3Client,
) -> None:
    files, backups = world.make_bucket(s3, versioned=False), world.make_bucket(s3, versioned=False)
    location = BackupLocation(bucket=backups, prefix="storage/")
    world.put(s3, backups, "storage/20240101/a.png", b"nightly")
    for name in ("a.png", "b.png", "docs/c.txt"):
        world.put(s3, files, name, name.encode())
    adapter = world.s3_adapter(s3, files, backups=location)
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    point = await adapter.snapshot(at, "before-42", "uid-1/restore-point/storage")
    assert point.copy == "storage/20250102T030405Z-before-42/"
    assert point.objects == 3
    copied = {k: v for k, v in world.objects(s3, backups).items() if k.startswith(point.copy)}
    assert copied == {f"{point.copy}{k}": k.encode() for k in ("a.png", "b.png", "docs/c.txt")}
    world.put(s3, files, "docs/new.txt", b"new")  # an added file cannot be hidden (no versions)
    world.put(s3, files, "b.png", b"b-later")
    s3.delete_object(Bucket=files, Key="a.png")
    plan = await adapter.plan(point.as_of, point.copy)
    assert (plan.source, plan.objects_to_restore) == (point.copy, 2)  # a.png, b.png
    restored = world.s3_adapter(s3, files, backups=location)
    with pytest.raises(PermanentError, match="not versioned"):  # b.png would be overwritten
        await restored.restore(point.as_of, "rb-1/restore-storage/storage", point.copy)


async def test_a_point_copy_restores_an_overwritten_file_on_a_bucket_versioned_since(
    s3: S3Client,
) -> None:
    files, backups = world.make_bucket(s3, versioned=False), world.make_bucket(s3, versioned=False)
    location = BackupLocation(bucket=backups, prefix="")
    world.put(s3, files, "a.png", b"a-v1")
    adapter = world.s3_adapter(s3, files, backups=location)
    point = await adapter.snapshot(datetime.now(UTC), "p1", "uid-1/restore-point/storage")
    s3.put_bucket_versioning(Bucket=files, VersioningConfiguration={"Status": "Enabled"})
    world.put(s3, files, "a.png", b"a-corrupt")
    world.put(s3, files, "new.png", b"new")
    assert point.copy is not None
    await adapter.restore(point.as_of, "rb-1/restore-storage/storage", point.copy)
    assert world.objects(s3, files) == {"a.png": b"a-v1"}
    assert set(world.objects(s3, backups)) == {f"{point.copy}a.png"}  # the copy is no live file


async def test_an_unversioned_bucket_without_backups_cannot_take_a_point(s3: S3Client) -> None:
    files = world.make_bucket(s3, versioned=False)
    with pytest.raises(PermanentError, match=r"spec\.targets\.storage\.s3\.backups"):
        await world.s3_adapter(s3, files).snapshot(datetime.now(UTC), "p", "k")


async def test_dropping_a_point_copy_deletes_that_folder_and_nothing_else(s3: S3Client) -> None:
    files, backups = world.make_bucket(s3, versioned=False), world.make_bucket(s3, versioned=False)
    location = BackupLocation(bucket=backups, prefix="storage/")
    world.put(s3, files, "a.png", b"a")
    world.put(s3, backups, "storage/20240101/a.png", b"nightly")
    adapter = world.s3_adapter(s3, files, backups=location)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    await adapter.snapshot(at, "p1", "k1")
    second = await adapter.snapshot(datetime(2030, 1, 2, tzinfo=UTC), "p2", "k2")
    assert await adapter.drop_snapshot(at, "p1", "k1") == 1
    left = set(world.objects(s3, backups))
    assert left == {"storage/20240101/a.png", f"{second.copy}a.png"}
    assert await adapter.drop_snapshot(at, "p1", "k1") == 0
    assert set(world.objects(s3, backups)) == left
