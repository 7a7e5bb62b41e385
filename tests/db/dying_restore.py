"""A restore whose operator dies half-way, run as a child process the test SIGKILLs.

The backup comes from a local file instead of S3; after half of it the stream waits for ever, as
a download does while the operator is busy. The test kills this process the way an OOM kill or a
node failure would: psql, its child, lives on with its input closed and must commit nothing.

Usage: python -m tests.db.dying_restore DATABASE_URL DUMP_FILE STEP_KEY
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from mypy_boto3_s3 import S3Client

from rollback_operator.providers.postgres import database as postgres
from rollback_operator.providers.postgres import dumps
from rollback_operator.providers.postgres.backups import Backup
from sandbox.services.postgres import PG_BIN
from tests.db import supabase, world

CHUNK = 64 * 1024


class HalfDownload(postgres.PostgresDatabase):
    """The adapter, its download replaced by the first half of `dump` and then a long wait."""

    def __init__(self, url: str, dump: bytes) -> None:
        options = postgres.Options(bin_dir=str(PG_BIN))
        target = world.pg_target("unused", schemas=supabase.RESTORED)
        super().__init__(target, url, cast("S3Client", None), options)
        self.dump = dump

    def _download(self, backup: Backup, *, window: int | None = None) -> AsyncIterator[bytes]:
        return self._half() if window is None else self._start_of(window)

    async def _start_of(self, window: int) -> AsyncIterator[bytes]:
        """The first bytes, whole: the checks that read a backup's start before the restore."""
        yield self.dump[:window]

    async def _half(self) -> AsyncIterator[bytes]:
        half = self.dump[: len(self.dump) // 2]
        for start in range(0, len(half), CHUNK):
            yield half[start : start + CHUNK]
        print("half sent", flush=True)
        await asyncio.Event().wait()


async def restore(url: str, dump: bytes, key: str) -> None:
    """Restore `dump` through the adapter's own restore path (format check, tools, marker)."""
    fmt = dumps.detect(dump[: dumps.HEADER_BYTES], "b")
    backup = Backup("b", "database/b", len(dump), datetime.now(UTC), fmt)
    await HalfDownload(url, dump)._apply(backup, key)


if __name__ == "__main__":
    url, path, step_key = sys.argv[1:4]
    asyncio.run(restore(url, Path(path).read_bytes(), step_key))
