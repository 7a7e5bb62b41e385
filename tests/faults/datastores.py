"""The S3 side of the fault matrix: the adapters that use S3, built on a client aimed at a proxy.

Why this module exists: the S3 operations of the product (storage plan and restore, the
database backup read at planning, the safety dump upload, the report copy) all go through one
boto3 client; here it is built with short timeouts and two attempts (the production client in
`providers/objectstore.py` waits 10 s to connect and 120 s to read, five attempts, and cannot be
configured) so a stall costs a second, not minutes. Everything else is the production adapter.

A module-scoped `Shelf` holds a versioned bucket whose prefixes each have a first version, then
(one second later, S3 keeps times to the second) a second one: each test takes a fresh prefix,
so a restore to `as_of` has real copies to make without a one-second wait per test.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from rollback_operator.api.targets import S3Target
from rollback_operator.providers.objectstore import layout
from rollback_operator.providers.objectstore.reports import S3ReportArchive
from rollback_operator.providers.storage import s3 as storage
from sandbox.services.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.db import world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

OBJECTS = ("a.txt", "b.txt")
REPORTED = datetime(2024, 1, 1, 12, tzinfo=UTC)
"""The creation time of the Rollbacks whose reports the fault tests copy."""


def fast_client(url: str) -> S3Client:
    """A boto3 client of `url`: path addressing, 1 s timeouts, two attempts."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 2},
        connect_timeout=1.0,
        read_timeout=1.0,
        s3={"addressing_style": "path"},
    )
    client: S3Client = boto3.session.Session().client(
        "s3", region_name=REGION, endpoint_url=url, config=config,
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
    )  # fmt: skip
    return client


@dataclass
class Shelf:
    """A versioned bucket of prefixes, each with v1 before `as_of` and v2 after it."""

    s3: S3Client
    files: str
    backups: str
    as_of: datetime
    _next: itertools.count[int] = field(default_factory=itertools.count)
    size: int = 0

    @classmethod
    def make(cls, s3: S3Client, prefixes: int) -> Shelf:
        files = world.make_bucket(s3, versioned=True)
        backups = world.make_bucket(s3, versioned=False)
        for n in range(prefixes):
            for name in OBJECTS:
                world.put(s3, files, f"p{n}/{name}", b"v1")
        as_of = world.next_second()
        for n in range(prefixes):
            for name in OBJECTS:
                world.put(s3, files, f"p{n}/{name}", b"v2")
        return cls(s3, files, backups, as_of, size=prefixes)

    def prefix(self) -> str:
        n = next(self._next)
        assert n < self.size, "the shelf ran out of prefixes: make it bigger"
        return f"p{n}/"

    def contents(self, prefix: str) -> dict[str, bytes]:
        return {k: v for k, v in world.objects(self.s3, self.files).items() if k.startswith(prefix)}


def operations(
    shelf: Shelf, client: S3Client, prefix: str
) -> dict[str, Callable[[], Awaitable[Any]]]:
    """The S3 operations of the storage target and the report archive, through `client`."""
    adapter = storage.S3Storage(S3Target(bucket=shelf.files, prefix=prefix), client)
    archive = S3ReportArchive(client, shelf.backups)
    n = prefix.strip("/")
    key = f"uid-{n}/restore-storage/storage"
    return {
        "storage plan": lambda: adapter.plan(shelf.as_of),
        "storage restore": lambda: adapter.restore(shelf.as_of, key),
        "report copy": lambda: archive.store(
            "prod", f"rb-{n}", "# report\n", uid=f"uid-{n}", created=REPORTED
        ),
    }


def expect_done(shelf: Shelf, operation: str, prefix: str, result: Any) -> None:
    """Check an operation that reported success really did its work."""
    if operation == "storage restore":
        assert shelf.contents(prefix) == {f"{prefix}{n}": b"v1" for n in OBJECTS}
    elif operation == "storage plan":
        assert result.objects_to_restore == len(OBJECTS), result
    else:
        n = prefix.strip("/")
        report = layout.report_key("prod", f"rb-{n}", REPORTED, f"uid-{n}")
        assert world.read(shelf.s3, shelf.backups, report)
