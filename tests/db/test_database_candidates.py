"""Listing the backups a database can be restored from (`kubectl rollback candidates`).

Claims: every backup under the prefix is listed newest first by the time in its name, the
newest one that is not a safety dump is the default (and is listed even past the limit), the
format comes from the bytes and the note gives the size; nothing is written.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mypy_boto3_s3 import S3Client

from rollback_operator.providers.base import Candidate
from tests.db import world
from tests.db.world import PREFIX, Db

SAFETY = "safety/uid-20990101T000000Z.dump"


def rows(found: list[Candidate]) -> list[tuple[str, str, bool]]:
    """(name, state, default) of each candidate, in order."""
    return [(c.id, c.state, c.default) for c in found]


def seed(database: Db, s3: S3Client, bucket: str) -> None:
    database.seed(["a"])
    world.put(s3, bucket, PREFIX + "backup_20240101.dump", database.dump("custom"))
    world.put(s3, bucket, PREFIX + "backup_20240103.sql.gz", database.dump("plain-gzip"))
    world.put(s3, bucket, PREFIX + "backup_20240102.sql", database.dump("plain"))
    world.put(s3, bucket, PREFIX + SAFETY, database.dump("custom"))


async def test_candidates_list_backups_newest_first_with_format_and_size(
    database: Db, s3: S3Client, backups: str
) -> None:
    seed(database, s3, backups)
    adapter = world.pg_adapter(database, s3, backups)

    found = await adapter.candidates(10)

    assert rows(found) == [
        (SAFETY, "custom", False),
        ("backup_20240103.sql.gz", "plain-gzip", True),
        ("backup_20240102.sql", "plain", False),
        ("backup_20240101.dump", "custom", False),
    ]
    assert found[1].created_at == datetime(2024, 1, 3, tzinfo=UTC)
    assert found[0].note.endswith("(safety dump)")
    assert found[3].note.endswith(" KiB")
    assert not any(c.live for c in found)
    assert (await adapter.plan(None)).backup == "backup_20240103.sql.gz"


async def test_candidates_keep_the_default_past_the_limit(
    database: Db, s3: S3Client, backups: str
) -> None:
    seed(database, s3, backups)

    found = await world.pg_adapter(database, s3, backups).candidates(1)

    assert rows(found) == [
        (SAFETY, "custom", False),
        ("backup_20240103.sql.gz", "plain-gzip", True),
    ]


async def test_candidates_show_empty_and_unreadable_objects_without_failing(
    database: Db, s3: S3Client, backups: str
) -> None:
    world.put(s3, backups, PREFIX + "backup_20240102.dump", b"")
    world.put(s3, backups, PREFIX + "backup_20240101.dump", b"\x00\x01binary junk\xff" * 10)

    found = await world.pg_adapter(database, s3, backups).candidates(10)

    assert rows(found) == [
        ("backup_20240102.dump", "empty", True),
        ("backup_20240101.dump", "unreadable", False),
    ]


async def test_candidates_of_an_empty_prefix_are_none_and_nothing_is_written(
    database: Db, s3: S3Client, backups: str
) -> None:
    world.put(s3, backups, "elsewhere/backup_20240101.dump", b"x")

    assert await world.pg_adapter(database, s3, backups).candidates(10) == []
    assert list(world.objects(s3, backups)) == ["elsewhere/backup_20240101.dump"]
