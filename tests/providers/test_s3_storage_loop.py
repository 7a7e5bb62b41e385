"""S3 work never blocks the event loop: when one copy of a restore fails while others are stuck
in a slow S3, the failure comes back at once and the loop (which also answers /healthz and
peering) keeps turning; the stuck copies finish in their threads, not on the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rollback_operator.api.targets import S3Target
from rollback_operator.providers.errors import ProviderError
from rollback_operator.providers.storage.s3 import Options, S3Storage

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
STUCK_SECONDS = 2.0
HOUR = timedelta(hours=1)


class StormyS3:
    """A versioned bucket of ten objects, each changed after `AS_OF`; the first copy is refused
    at once (403) and every other copy hangs for `STUCK_SECONDS`."""

    def __init__(self) -> None:
        self.copies = 0
        self.lock = threading.Lock()

    def get_bucket_versioning(self, **_: Any) -> dict[str, str]:
        return {"Status": "Enabled"}

    def get_paginator(self, _: str) -> StormyS3:
        return self

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        versions = []
        for i in range(10):
            for version, when in (("new", AS_OF + HOUR), ("old", AS_OF - HOUR)):
                versions.append({
                    "Key": f"files/{i}.txt", "VersionId": f"{version}-{i}", "Size": 1,
                    "IsLatest": version == "new", "ETag": f'"{version}{i}"', "LastModified": when,
                })  # fmt: skip
        return [{"Versions": versions}]

    def copy_object(self, **_: Any) -> dict[str, Any]:
        with self.lock:
            self.copies += 1
            first = self.copies == 1
        if first:
            error = {"Error": {"Code": "AccessDenied", "Message": "denied"}}
            raise ClientError(error, "CopyObject")  # type: ignore[arg-type]
        time.sleep(STUCK_SECONDS)
        return {"CopyObjectResult": {"ETag": '"copied"'}}

    def head_object(self, **_: Any) -> dict[str, Any]:
        return {"Metadata": {}}


async def _longest_stall(work: asyncio.Task[Any]) -> float:
    """The longest gap between two turns of the loop while `work` runs (and a moment after)."""
    longest, last = 0.0, time.monotonic()
    deadline = None
    while deadline is None or time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        now = time.monotonic()
        longest, last = max(longest, now - last), now
        if work.done() and deadline is None:
            deadline = now + 0.2
    return longest


async def test_a_failing_restore_returns_at_once_and_never_stalls_the_loop() -> None:
    target = S3Target.model_validate({"bucket": "files", "prefix": "files/"})
    storage = S3Storage(target, StormyS3(), Options(concurrency=4, now=lambda: AS_OF))  # type: ignore[arg-type]
    started = time.monotonic()
    work = asyncio.ensure_future(storage.restore(AS_OF, "key"))
    longest = await _longest_stall(work)
    with pytest.raises(ProviderError):
        work.result()
    assert longest < 1.0, f"the loop stood still for {longest:.1f}s"
    assert time.monotonic() - started < STUCK_SECONDS + 1.0
