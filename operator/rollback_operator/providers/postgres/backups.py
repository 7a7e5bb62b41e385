"""Which objects under a database target's prefix are backups, which one a plan takes, and how
`kubectl rollback candidates` shows them.

Why this module exists: the adapter (`database`) dumps and restores; finding a backup (the
newest, or one asked for by name), listing them in order and telling what each one is from its
first bytes are questions of the object store alone, answered here without the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from rollback_operator.providers.base import Candidate
from rollback_operator.providers.errors import NotFoundError, ProviderError
from rollback_operator.providers.objectstore import layout, s3api
from rollback_operator.providers.postgres import contents, dumps
from rollback_operator.providers.postgres.dumps import DumpFormat

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROVIDER = "postgres"


@dataclass(frozen=True)
class Backup:
    """One backup object and what we learned about it."""

    name: str
    key: str
    size: int
    taken_at: datetime
    format: DumpFormat | None = None
    entries: tuple[contents.Entry, ...] = ()  # an archive's table of contents, once read


class BackupFolder:
    """The backups under one bucket and prefix, safety dumps among them."""

    def __init__(self, s3: S3Client, bucket: str, prefix: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix

    async def find(self, pin: str | None) -> Backup:
        """The backup named `pin`, or the newest one that is not a safety dump."""
        if pin is not None:
            return await self.named(pin)
        backups = [b async for b in self.listing() if layout.is_backup(self.prefix, b.key)]
        if not backups:
            raise NotFoundError(
                f"no backups under {self.where()} (a backup is named *.dump, *.sql, *.backup "
                "or *.pgdump, optionally .gz)",
                provider=PROVIDER,
            )
        return max(backups, key=by_time)

    async def named(self, name: str) -> Backup:
        """The backup called `name`; NotFoundError naming the folder when there is none."""
        key = layout.backup_key(self.prefix, name)
        try:
            head = await s3api.call(
                "reading backup", self.s3.head_object, Bucket=self.bucket, Key=key
            )
        except NotFoundError:
            raise NotFoundError(
                f"backup {name} not found under {self.where()}", provider=PROVIDER
            ) from None
        return Backup(name, key, head["ContentLength"], layout.taken_at(name, head["LastModified"]))

    async def listing(self) -> AsyncIterator[Backup]:
        """Every dump under the prefix, safety dumps included, in key order; objects that are
        not named as dumps and the operator's reports are no backups and are left out."""
        paginated = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        async for page in s3api.pages("listing backups", paginated):
            for item in page.get("Contents", []):
                name = layout.backup_name(self.prefix, item["Key"])
                if layout.is_dump_name(name) and not item["Key"].startswith(layout.REPORTS_FOLDER):
                    when = layout.taken_at(name, item["LastModified"])
                    yield Backup(name, item["Key"], item.get("Size", 0), when)

    async def candidates(self, limit: int) -> list[Candidate]:
        """The newest `limit` backups, and the one a plan would take if it is older."""
        listed = sorted([b async for b in self.listing()], key=by_time, reverse=True)
        default = next((b for b in listed if layout.is_backup(self.prefix, b.key)), None)
        shown = listed[:limit] + ([default] if default and default not in listed[:limit] else [])
        states = await asyncio.gather(*(self._state(b) for b in shown))
        pairs = zip(shown, states, strict=True)
        return [candidate(b, state, b == default) for b, state in pairs]

    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    async def _state(self, backup: Backup) -> str:
        """The format its first bytes show; "empty" or "unreadable" when they show none, and
        "backup" when they cannot be read (a listing is still worth showing)."""
        if backup.size == 0:
            return "empty"
        try:
            header = await s3api.read_range(
                "reading backup", self.s3, self.bucket, backup.key, dumps.HEADER_BYTES
            )
            return dumps.detect(header, backup.name).value
        except dumps.BadDump:
            return "unreadable"
        except ProviderError:
            return "backup"


def by_time(backup: Backup) -> tuple[datetime, str]:
    """Sort key: when it was taken, then its name (so equal times still order the same)."""
    return backup.taken_at, backup.name


def candidate(backup: Backup, state: str, default: bool) -> Candidate:
    """The backup as `kubectl rollback candidates` lists it."""
    safety = " (safety dump)" if layout.is_safety_dump(backup.name) else ""
    return Candidate(
        backup.name, backup.taken_at, state, False, default, size(backup.size) + safety
    )


def size(count: int) -> str:
    """A byte count for people: 512 B, 3.2 MiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"
