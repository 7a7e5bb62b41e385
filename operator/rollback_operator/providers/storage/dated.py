"""Dated storage backups: the bucket restored from a `<backups.prefix>YYYYMMDD/` folder.

Some teams copy their bucket to a dated folder every night instead of relying on versioning.
The restore picks the newest folder at or before the time, then walks the folder and the live
bucket side by side (both listings are in key order), so memory stays flat: keys that differ
are copied back server-side, keys the backup lacks are hidden when the bucket is versioned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING

from rollback_operator.api.targets import S3Target
from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.objectstore import layout, s3api
from rollback_operator.providers.storage.diff import Action, Kind, Live, Source, compare

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROVIDER = "s3"
Listed = tuple[str, Source]  # (key relative to the listed prefix, the object)


class DatedBackups:
    """The dated folders of one storage target."""

    def __init__(self, s3: S3Client, target: S3Target) -> None:
        assert target.backups is not None
        self.s3, self.target, self.backups = s3, target, target.backups

    async def folder(self, as_of: datetime) -> str:
        """The key prefix of the newest folder at or before `as_of`; PermanentError if none."""
        listing = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.backups.bucket, Prefix=self.backups.prefix, Delimiter="/"
        )
        days = []
        async for page in s3api.pages("listing dated backups", listing):
            for common in page.get("CommonPrefixes", []):
                day = layout.folder_day(self.backups.prefix, common.get("Prefix", ""))
                if day is not None:
                    days.append(day)
        chosen = layout.folder_for(days, as_of)
        if chosen is None:
            where = f"s3://{self.backups.bucket}/{self.backups.prefix}"
            raise PermanentError(
                f"no dated backup folder (YYYYMMDD/) at or before {as_of.isoformat()} in {where}",
                provider=PROVIDER,
            )
        return layout.dated_folder(self.backups.prefix, chosen)

    async def actions(self, folder: str, *, hide: bool) -> AsyncIterator[Action]:
        """The action for every key in the folder or the live prefix, in key order."""
        prefix = self.target.prefix
        backup = self._objects(self.backups.bucket, folder + prefix, strip=folder)
        live = self.live()
        want, have = await anext(backup, None), await anext(live, None)
        while want is not None or have is not None:
            if have is None or (want is not None and want[0] < have[0]):
                assert want is not None
                yield compare(want[0], want[1], None)
                want = await anext(backup, None)
            elif want is None or have[0] < want[0]:
                action = compare(have[0], None, Live(have[1].etag, have[1].size))
                yield action if hide else Action(Kind.UNCHANGED, have[0])
                have = await anext(live, None)
            else:
                yield compare(want[0], want[1], Live(have[1].etag, have[1].size))
                want, have = await anext(backup, None), await anext(live, None)

    def live(self) -> AsyncIterator[Listed]:
        """Every live object under the target's prefix, in key order, the backup folders'
        own objects left out."""
        return self._objects(self.target.bucket, self.target.prefix, strip="")

    async def _objects(self, bucket: str, prefix: str, *, strip: str) -> AsyncIterator[Listed]:
        listing = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        live = not strip
        async for page in s3api.pages(f"listing s3://{bucket}/{prefix}", listing):
            for item in page.get("Contents", []):
                key = item["Key"]
                if live and self._is_backup(bucket, key):
                    continue
                source = Source(bucket, key, str(item.get("ETag", "")), int(item.get("Size", 0)))
                yield key[len(strip) :], source

    def _is_backup(self, bucket: str, key: str) -> bool:
        """Whether a live key is in one of the dated folders themselves (a restore point's
        copy included): never touched."""
        if bucket != self.backups.bucket or not key.startswith(self.backups.prefix):
            return False
        head = layout.backup_name(self.backups.prefix, key).split("/", 1)[0] + "/"
        return layout.folder_day("", head) is not None or layout.is_point_folder("", head)
