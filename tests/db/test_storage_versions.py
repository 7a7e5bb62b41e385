"""Point-in-time restore of a bucket from its object versions, against a real S3 API server.

The world: `same` unchanged since the time, `edited` overwritten after it, `born` created after
it, `gone` deleted after it, `reborn` deleted before it and created again after it, `dead`
deleted before it and still gone.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_s3 import S3Client
from mypy_boto3_s3.type_defs import CompletedPartTypeDef

from rollback_operator.providers.errors import PermanentError, UnauthorizedError
from rollback_operator.providers.storage import writes
from tests.db import world

KEY = "uid-3/restore-storage/storage"
SCENES = 7  # one per test that takes a scene


class Scenes:
    """Buckets that all went through the same history; S3 keeps time to the second, so the
    waits between the acts are shared by every bucket instead of paid per test."""

    def __init__(self, s3: S3Client) -> None:
        self.buckets = [world.make_bucket(s3, versioned=True) for _ in range(SCENES)]
        for bucket in self.buckets:
            for key, body in [("same", b"s1"), ("edited", b"e1"), ("gone", b"g1")]:
                world.put(s3, bucket, key, body)
            world.put(s3, bucket, "reborn", b"r1")
            world.put(s3, bucket, "dead", b"d1")
        world.next_second()
        for bucket in self.buckets:
            s3.delete_object(Bucket=bucket, Key="reborn")
            s3.delete_object(Bucket=bucket, Key="dead")
        self.as_of = world.next_second()
        for bucket in self.buckets:
            world.put(s3, bucket, "edited", b"e2")
            world.put(s3, bucket, "born", b"b2")
            world.put(s3, bucket, "reborn", b"r2")
            s3.delete_object(Bucket=bucket, Key="gone")

    def take(self) -> str:
        return self.buckets.pop()


@pytest.fixture(scope="module")
def scenes(s3: S3Client) -> Scenes:
    return Scenes(s3)


@pytest.fixture
def scene(scenes: Scenes) -> tuple[str, datetime]:
    return scenes.take(), scenes.as_of


async def test_plan_counts_what_to_restore_hide_and_leave(
    s3: S3Client, scene: tuple[str, datetime]
) -> None:
    bucket, as_of = scene
    plan = await world.s3_adapter(s3, bucket).plan(as_of)

    assert (plan.objects_to_restore, plan.objects_to_hide, plan.objects_unchanged) == (2, 2, 2)
    assert plan.bytes_to_restore == 4
    assert plan.source == "versions"


async def test_restore_brings_back_the_state_at_the_time(
    s3: S3Client, scene: tuple[str, datetime]
) -> None:
    bucket, as_of = scene
    result = await world.s3_adapter(s3, bucket).restore(as_of, KEY)

    assert world.objects(s3, bucket) == {"same": b"s1", "edited": b"e1", "gone": b"g1"}
    assert "restored 2 objects" in result.message
    assert "hid 2" in result.message


async def test_no_version_is_ever_deleted(s3: S3Client, scene: tuple[str, datetime]) -> None:
    bucket, as_of = scene
    before = world.versions(s3, bucket)
    deletes: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        deletes.append(dict(params))

    s3.meta.events.register("provide-client-params.s3.DeleteObject", record)
    try:
        await world.s3_adapter(s3, bucket).restore(as_of, KEY)
    finally:
        s3.meta.events.unregister("provide-client-params.s3.DeleteObject", record)

    after = world.versions(s3, bucket)
    assert before < after
    assert len(after - before) == 4  # two copies and two delete markers
    assert sorted(d["Key"] for d in deletes) == ["born", "reborn"]
    assert not any("VersionId" in d for d in deletes)


async def test_a_second_pass_finds_nothing_to_do(s3: S3Client, scene: tuple[str, datetime]) -> None:
    bucket, as_of = scene
    adapter = world.s3_adapter(s3, bucket)
    await adapter.restore(as_of, KEY)
    settled = world.versions(s3, bucket)

    plan = await adapter.plan(as_of)
    again = await adapter.restore(as_of, KEY)

    assert (plan.objects_to_restore, plan.objects_to_hide, plan.objects_unchanged) == (0, 0, 6)
    assert "restored 0 objects" in again.message
    assert "hid 0" in again.message
    assert world.versions(s3, bucket) == settled


async def test_a_failed_copy_fails_the_step_clearly_and_a_rerun_finishes_the_job(
    s3: S3Client, scene: tuple[str, datetime]
) -> None:
    bucket, as_of = scene

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] == "edited":
            denied: Any = {"Error": {"Code": "AccessDenied", "Message": "no"}}
            raise ClientError(denied, "CopyObject")

    s3.meta.events.register("provide-client-params.s3.CopyObject", refuse)
    try:
        with pytest.raises(UnauthorizedError, match="copying edited"):
            await world.s3_adapter(s3, bucket).restore(as_of, KEY)
    finally:
        s3.meta.events.unregister("provide-client-params.s3.CopyObject", refuse)

    await world.s3_adapter(s3, bucket).restore(as_of, KEY)
    assert world.objects(s3, bucket) == {"same": b"s1", "edited": b"e1", "gone": b"g1"}


async def test_only_the_prefix_is_restored(s3: S3Client, files: str) -> None:
    world.put(s3, files, "app/a", b"1")
    world.put(s3, files, "other/a", b"1")
    as_of = world.next_second()
    world.put(s3, files, "app/a", b"2")
    world.put(s3, files, "other/a", b"2")

    await world.s3_adapter(s3, files, prefix="app/").restore(as_of, KEY)

    assert world.objects(s3, files) == {"app/a": b"1", "other/a": b"2"}


async def test_a_bucket_without_versioning_is_refused_before_any_change(
    s3: S3Client,
) -> None:
    bucket = world.make_bucket(s3, versioned=False)
    world.put(s3, bucket, "a", b"1")
    adapter = world.s3_adapter(s3, bucket)

    with pytest.raises(PermanentError, match="no object versioning"):
        await adapter.plan(datetime.now(UTC))
    with pytest.raises(PermanentError, match="no object versioning"):
        await adapter.restore(datetime.now(UTC), KEY)
    assert world.objects(s3, bucket) == {"a": b"1"}


@pytest.mark.parametrize(
    ("shift", "reason"),
    [(timedelta(days=-365), "before the oldest version"), (timedelta(days=1), "in the future")],
)
async def test_a_time_outside_the_history_is_refused_before_any_change(
    s3: S3Client, scene: tuple[str, datetime], shift: timedelta, reason: str
) -> None:
    bucket, _ = scene
    before = world.versions(s3, bucket)

    with pytest.raises(PermanentError, match=reason):
        await world.s3_adapter(s3, bucket).restore(datetime.now(UTC) + shift, KEY)

    assert world.versions(s3, bucket) == before


async def test_large_objects_are_copied_in_parts_and_not_again(s3: S3Client, files: str) -> None:
    old = os.urandom(11 * 1024 * 1024)
    world.put(s3, files, "big", old, ContentType="video/mp4", Metadata={"owner": "me"})
    as_of = world.next_second()
    world.put(s3, files, "big", os.urandom(11 * 1024 * 1024))
    limits = writes.CopyLimits(multipart_threshold=8 * 1024 * 1024, part_size=5 * 1024 * 1024)
    adapter = world.s3_adapter(s3, files, limits=limits)

    await adapter.restore(as_of, KEY)

    assert world.read(s3, files, "big") == old
    head = s3.head_object(Bucket=files, Key="big")
    assert head["ETag"].endswith('-3"')  # three parts
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"]["owner"] == "me"
    plan = await adapter.plan(as_of)
    assert (plan.objects_to_restore, plan.objects_unchanged) == (0, 1)


async def test_a_multipart_source_is_marked_so_a_second_pass_knows_it(
    s3: S3Client, files: str
) -> None:
    old = os.urandom(6 * 1024 * 1024)
    upload = s3.create_multipart_upload(Bucket=files, Key="mp")
    parts: list[CompletedPartTypeDef] = []
    for number, chunk in enumerate((old[: 5 * 1024 * 1024], old[5 * 1024 * 1024 :]), start=1):
        done = s3.upload_part(
            Bucket=files, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=chunk
        )
        parts.append({"ETag": done["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=files, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    as_of = world.next_second()
    world.put(s3, files, "mp", os.urandom(6 * 1024 * 1024))
    adapter = world.s3_adapter(s3, files)

    await adapter.restore(as_of, KEY)
    plan = await adapter.plan(as_of)

    assert world.read(s3, files, "mp") == old
    assert (plan.objects_to_restore, plan.objects_unchanged) == (0, 1)
