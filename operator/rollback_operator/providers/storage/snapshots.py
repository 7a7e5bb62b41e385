"""A restore point's storage moment: the time itself, or a server-side copy to a dated folder.

On a versioned bucket every past state is kept, so the moment is all a restore point needs.
A bucket without versioning has no past: the files are copied server-side (no byte passes
through the operator) to `<backups.prefix>YYYYMMDDTHHMMSSZ-<point>/`, the dated layout the
storage restore reads (`dated.py`), with a bounded number of copies in flight. Dropping a point
deletes that folder and nothing else.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from rollback_operator.api.targets import BackupLocation, S3Target
from rollback_operator.providers.base import PointCopy
from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.objectstore import layout, s3api
from rollback_operator.providers.storage import dated, writes
from rollback_operator.providers.storage.diff import Source

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROVIDER = "s3"
_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys


class Snapshots:
    """Takes and drops the storage part of restore points for one storage target."""

    def __init__(
        self, s3: S3Client, target: S3Target, concurrency: int, limits: writes.CopyLimits
    ) -> None:
        self.s3, self.target, self.concurrency, self.limits = s3, target, concurrency, limits

    async def take(self, at: datetime, point: str, *, versioned: bool) -> PointCopy:
        """The moment `at`; on an unversioned bucket, after copying every file under it."""
        if versioned:
            return PointCopy(as_of=at)
        backups = self._backups()
        folder = layout.point_folder(backups.prefix, at, point)
        copied = await self._copy_all(backups.bucket, folder)
        return PointCopy(as_of=at, copy=folder, objects=copied)

    async def drop(self, copy: str) -> int:
        """Delete every object of the copy folder `copy`; how many there were."""
        backups = self._backups()
        if not layout.is_point_folder(backups.prefix, copy):
            raise PermanentError(
                f"{copy!r} is not a restore point's copy folder under "
                f"s3://{backups.bucket}/{backups.prefix}: nothing deleted",
                provider=PROVIDER,
            )
        listing = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=backups.bucket, Prefix=copy
        )
        deleted = 0
        async for page in s3api.pages(f"listing s3://{backups.bucket}/{copy}", listing):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            for start in range(0, len(keys), _DELETE_BATCH):
                batch = keys[start : start + _DELETE_BATCH]
                await s3api.call(
                    f"deleting s3://{backups.bucket}/{copy}", self.s3.delete_objects,
                    Bucket=backups.bucket, Delete={"Objects": batch, "Quiet": True},  # type: ignore[typeddict-item]
                )  # fmt: skip
                deleted += len(batch)
        return deleted

    def _backups(self) -> BackupLocation:
        if self.target.backups is None:
            raise PermanentError(
                f"s3://{self.target.bucket} keeps no object versions and "
                "spec.targets.storage.s3.backups is not set: a restore point of an unversioned "
                "bucket copies the files to a dated folder there; set it, or enable versioning",
                provider=PROVIDER,
            )
        return self.target.backups

    async def _copy_all(self, bucket: str, folder: str) -> int:
        """Copy every live file to `folder` in `bucket`, `concurrency` at a time."""
        slots = asyncio.Semaphore(self.concurrency)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="s3-snapshot")
        loop, copied = asyncio.get_running_loop(), 0

        async def one(key: str, source: Source) -> None:
            try:
                work = functools.partial(
                    writes.copy, self.s3, bucket, folder + key, source, self.limits
                )
                await loop.run_in_executor(pool, work)
            finally:
                slots.release()

        try:
            async with asyncio.TaskGroup() as group:
                async for key, source in dated.DatedBackups(self.s3, self.target).live():
                    await slots.acquire()
                    group.create_task(one(key, source))
                    copied += 1
        except BaseExceptionGroup as errors:
            raise _first(errors) from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            await asyncio.to_thread(pool.shutdown, wait=True)
        return copied


def _first(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a task group's failure (a nested group's first, if so)."""
    first = errors.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
