"""Planning a database restore: which backup, when it was taken, what it is, and every check
that must fail before anything is changed."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.providers.errors import (
    NotFoundError,
    PermanentError,
    RetryableError,
    UnauthorizedError,
)
from tests.db import world
from tests.db.world import PREFIX, Db


async def test_plan_picks_the_newest_backup_by_the_time_in_its_name(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["a"])
    dump = database.dump("custom")
    for name in ("backup_20240103.dump", "backup_20240101.dump", "backup_20240102.dump"):
        world.put(s3, backups, PREFIX + name, dump)
    world.put(s3, backups, PREFIX + "safety/uid-20990101T000000Z.dump", dump)

    plan = await world.pg_adapter(database, s3, backups).plan(None)

    assert plan.backup == "backup_20240103.dump"
    assert plan.taken_at == datetime(2024, 1, 3, tzinfo=UTC)
    assert plan.size_bytes == len(dump)
    assert plan.format == "custom"


async def test_plan_uses_the_upload_time_when_the_name_has_no_date(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["a"])
    world.put(s3, backups, PREFIX + "nightly.dump", database.dump("custom"))
    head = s3.head_object(Bucket=backups, Key=PREFIX + "nightly.dump")

    plan = await world.pg_adapter(database, s3, backups).plan(None)

    assert plan.taken_at == head["LastModified"]


async def test_plan_takes_the_pinned_backup_even_when_older_or_a_safety_dump(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["a"])
    dump = database.dump("custom")
    world.put(s3, backups, PREFIX + "backup_20240101.dump", dump)
    world.put(s3, backups, PREFIX + "backup_20240105.dump", dump)
    world.put(s3, backups, PREFIX + "safety/x-20240106T000000Z.dump", dump)
    adapter = world.pg_adapter(database, s3, backups)

    assert (await adapter.plan("backup_20240101.dump")).backup == "backup_20240101.dump"
    pinned = await adapter.plan("safety/x-20240106T000000Z.dump")
    assert pinned.taken_at == datetime(2024, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("custom", "b.dump"),
        ("custom-gzip", "b.dump.gz"),
        ("plain", "b.sql"),
        ("plain-gzip", "b.gz"),
    ],
)
async def test_plan_reads_the_format_from_the_bytes_not_the_name(
    database: Db, s3: S3Client, backups: str, fmt: str, name: str
) -> None:
    database.seed(["a"])
    world.put(s3, backups, PREFIX + "misleading-" + name + ".bin", database.dump(fmt))

    plan = await world.pg_adapter(database, s3, backups).plan("misleading-" + name + ".bin")

    assert plan.format == fmt


async def test_what_the_operator_wrote_or_is_no_dump_by_name_is_never_the_newest_backup(
    database: Db, s3: S3Client, backups: str
) -> None:
    """With the prefix "", reports and the deployment log share the folder with the dumps and
    are the newest uploads; neither they, a safety dump nor a README is ever the default."""
    database.seed(["a"])
    dump = database.dump("custom")
    world.put(s3, backups, "backup_20240101.dump", dump)
    world.next_second()
    run = "reports/prod/rb-1/20240102T000000Z-1f2e3d4c.md"  # and one as older versions named it:
    reports = ("reports/deployment.log", run, "reports/prod/rb-1.md")
    for key in (*reports, "README.txt", "dumps.sha256"):
        world.put(s3, backups, key, b"2024-01-02 rollback prod/rb-1 Succeeded\n")
    world.put(s3, backups, "safety/uid-20990101T000000Z.dump", dump)
    adapter = world.pg_adapter(database, s3, backups, prefix="")

    plan = await adapter.plan(None)
    listed = [c.id for c in await adapter.candidates(10)]

    assert plan.backup == "backup_20240101.dump"
    assert sorted(listed) == ["backup_20240101.dump", "safety/uid-20990101T000000Z.dump"]


async def test_a_newest_dump_whose_bytes_are_no_dump_fails_the_plan_naming_it(
    database: Db, s3: S3Client, backups: str
) -> None:
    """An older good dump is not taken silently in its place: that would lose more data."""
    database.seed(["a"])
    world.put(s3, backups, PREFIX + "backup_20240101.dump", database.dump("custom"))
    world.put(s3, backups, PREFIX + "backup_20240102.sql.gz", b"<html>Access denied</html>")

    with pytest.raises(PermanentError, match=r"backup_20240102\.sql\.gz.*not"):
        await world.pg_adapter(database, s3, backups).plan(None)


async def test_no_backups_at_all_is_not_found(database: Db, s3: S3Client, backups: str) -> None:
    with pytest.raises(NotFoundError, match="no backups under"):
        await world.pg_adapter(database, s3, backups).plan(None)


async def test_a_missing_pinned_backup_is_not_found(
    database: Db, s3: S3Client, backups: str
) -> None:
    with pytest.raises(NotFoundError, match=r"backup nope\.dump not found"):
        await world.pg_adapter(database, s3, backups).plan("nope.dump")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "is empty"),
        (os.urandom(4096), "not a PostgreSQL dump"),
        (b"PGDMP\x09\x00\x00\x04\x08\x01" + b"\x00" * 64, "corrupt pg_dump custom-format header"),
        # fixed bytes: about one random table of contents in 16 reads as a valid one (an entry
        # count of 0, or entries pg_restore --list accepts), and the case then tests nothing;
        # these make pg_restore --list fail, as a truncated archive does
        (b"PGDMP\x01\x0e\x00\x04\x08\x01" + random.Random(0).randbytes(4096), "table of contents"),
        (b"\x1f\x8b" + os.urandom(100), "not valid gzip"),
    ],
    ids=["empty", "random-bytes", "bad-header", "bad-toc", "bad-gzip"],
)
async def test_an_unusable_backup_fails_the_restore_before_any_change(
    database: Db, s3: S3Client, backups: str, body: bytes, reason: str
) -> None:
    database.seed(["current"])
    world.put(s3, backups, PREFIX + "bad.dump", body)
    adapter = world.pg_adapter(database, s3, backups)

    with pytest.raises(PermanentError, match=reason):
        await adapter.plan("bad.dump")
    with pytest.raises(PermanentError):  # a bad TOC fails inside pg_restore's transaction
        await adapter.restore("bad.dump", "uid/restore-database/database")

    assert database.notes() == ["current"]
    assert database.markers() == []


async def test_wrong_credentials_fail_before_any_change_and_never_show_the_password(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["current"])
    world.put(s3, backups, PREFIX + "b.dump", database.dump("custom"))
    wrong = "Wr0ng-pa55word-xyz"
    adapter = world.pg_adapter(
        database, s3, backups, url=database.server.url_for(database.name, password=wrong)
    )

    for call in (adapter.plan(None), adapter.restore("b.dump", "k"), adapter.safety_backup("k")):
        with pytest.raises(UnauthorizedError, match="refused the credentials") as caught:
            await call
        assert wrong not in str(caught.value)
        assert wrong not in repr(caught.value)

    assert database.notes() == ["current"]
    assert s3.list_objects_v2(Bucket=backups, Prefix=PREFIX + "safety/").get("KeyCount") == 0


async def test_an_unreachable_server_is_retryable_and_changes_nothing(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["current"])
    world.put(s3, backups, PREFIX + "b.dump", database.dump("custom"))
    url = f"postgresql://postgres:{database.server.password}@127.0.0.1:1/{database.name}"
    adapter = world.pg_adapter(database, s3, backups, url=url, connect_timeout=2)

    with pytest.raises(
        RetryableError, match=r"cannot reach the database at 127\.0\.0\.1:1"
    ) as caught:
        await adapter.restore("b.dump", "k")

    assert database.server.password not in str(caught.value)
    assert database.notes() == ["current"]


async def test_a_database_that_does_not_exist_is_not_found(
    database: Db, s3: S3Client, backups: str
) -> None:
    world.put(s3, backups, PREFIX + "b.dump", b"PGDMP")
    adapter = world.pg_adapter(database, s3, backups, url=database.server.url_for("nowhere"))

    with pytest.raises(NotFoundError, match="nowhere does not exist"):
        await adapter.restore("b.dump", "k")
