"""Restoring a bucket from dated backup folders (`<prefix>YYYYMMDD/`) instead of versions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.api.targets import BackupLocation
from rollback_operator.providers.errors import PermanentError
from tests.db import world

KEY = "uid-4/restore-storage/storage"
JAN_3 = datetime(2024, 1, 3, 12, tzinfo=UTC)


def dated_world(s3: S3Client, files: str, backups: str) -> BackupLocation:
    for key, body in [("a", b"a-jan1"), ("b", b"b-jan1"), ("c", b"c-jan1")]:
        world.put(s3, backups, f"storage/20240101/{key}", body)
    world.put(s3, backups, "storage/20240105/a", b"a-jan5")
    world.put(s3, backups, "storage/not-a-day/a", b"junk")
    for key, body in [("a", b"a-now"), ("b", b"b-jan1"), ("d", b"d-now")]:
        world.put(s3, files, key, body)  # c was deleted, d is new, a changed
    return BackupLocation(bucket=backups, prefix="storage/")


async def test_the_newest_folder_at_or_before_the_time_is_restored(
    s3: S3Client, files: str, backups: str
) -> None:
    location = dated_world(s3, files, backups)
    adapter = world.s3_adapter(s3, files, backups=location)

    plan = await adapter.plan(JAN_3)
    result = await adapter.restore(JAN_3, KEY)

    assert plan.source == "storage/20240101/"
    assert (plan.objects_to_restore, plan.objects_to_hide, plan.objects_unchanged) == (2, 1, 1)
    assert world.objects(s3, files) == {"a": b"a-jan1", "b": b"b-jan1", "c": b"c-jan1"}
    assert result.external_ids["source"] == "storage/20240101/"
    again = await adapter.plan(JAN_3)
    assert (again.objects_to_restore, again.objects_to_hide) == (0, 0)


async def test_backups_kept_in_the_restored_bucket_are_never_touched(
    s3: S3Client, files: str
) -> None:
    world.put(s3, files, "backups/20240101/a", b"a-jan1")
    world.put(s3, files, "a", b"a-now")
    adapter = world.s3_adapter(s3, files, backups=BackupLocation(bucket=files, prefix="backups/"))

    await adapter.restore(JAN_3, KEY)

    assert world.objects(s3, files) == {"a": b"a-jan1", "backups/20240101/a": b"a-jan1"}


async def test_no_folder_old_enough_is_refused(s3: S3Client, files: str, backups: str) -> None:
    location = dated_world(s3, files, backups)

    with pytest.raises(PermanentError, match="no dated backup folder"):
        await world.s3_adapter(s3, files, backups=location).restore(
            datetime(2023, 12, 31, tzinfo=UTC), KEY
        )

    assert world.read(s3, files, "a") == b"a-now"


async def test_an_unversioned_bucket_is_never_overwritten(s3: S3Client, backups: str) -> None:
    files = world.make_bucket(s3, versioned=False)
    location = dated_world(s3, files, backups)

    with pytest.raises(PermanentError, match=r"not versioned.*overwrite 1 existing object"):
        await world.s3_adapter(s3, files, backups=location).restore(JAN_3, KEY)

    assert world.objects(s3, files) == {"a": b"a-now", "b": b"b-jan1", "d": b"d-now"}


async def test_an_unversioned_bucket_still_gets_missing_objects_back(
    s3: S3Client, backups: str
) -> None:
    files = world.make_bucket(s3, versioned=False)
    world.put(s3, backups, "storage/20240101/a", b"a-jan1")
    world.put(s3, files, "extra", b"kept")

    await world.s3_adapter(
        s3, files, backups=BackupLocation(bucket=backups, prefix="storage/")
    ).restore(JAN_3, KEY)

    assert world.objects(s3, files) == {"a": b"a-jan1", "extra": b"kept"}
