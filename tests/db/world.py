"""Builders for the database and storage tests: seeded databases, dumps, buckets, adapters.

Tests say what the world looks like (`db.seed(["a", "b"])`, `world.put(s3, bucket, key, b"x")`)
and what they expect, and leave the mechanics here.
"""

from __future__ import annotations

import gzip
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mypy_boto3_s3 import S3Client

from rollback_operator.api.common import SecretKeyRef
from rollback_operator.api.policy import BackupLocation, PostgresTarget, S3Target
from rollback_operator.providers.postgres import database as postgres
from rollback_operator.providers.storage import s3 as storage
from rollback_operator.providers.storage import writes
from tests.services.postgres import PG_BIN, SUPERUSER, PostgresServer

PREFIX = "database/"


@dataclass
class Db:
    """One test database on the session's server."""

    server: PostgresServer
    name: str

    @property
    def url(self) -> str:
        """Its DATABASE_URL, with the password."""
        return self.server.url_for(self.name)

    def sql(self, sql: str) -> str:
        """Run SQL as the superuser; its unaligned output."""
        return self.server.psql(self.name, sql)

    def seed(self, notes: Sequence[str]) -> None:
        """Replace the `items` table with one row per note."""
        values = ", ".join(f"('{note}')" for note in notes)
        self.sql(
            "DROP TABLE IF EXISTS items CASCADE;"
            " CREATE TABLE items (id serial PRIMARY KEY, note text NOT NULL);"
            + (f" INSERT INTO items (note) VALUES {values};" if notes else "")
        )

    def notes(self) -> list[str]:
        """The notes in `items`, in id order ([] when the table is gone)."""
        out = self.sql("SELECT coalesce(string_agg(note, ',' ORDER BY id), '') FROM items")
        return [n for n in out.strip().split(",") if n]

    def markers(self) -> list[str]:
        """The restore keys recorded by the adapter."""
        if not self.sql("SELECT to_regclass('rollback_operator.restores')").strip():
            return []
        return self.sql("SELECT key FROM rollback_operator.restores ORDER BY key").split()

    def dump(self, fmt: str) -> bytes:
        """A dump of the database now: custom, plain, or either gzipped (plain with --clean)."""
        options = ["-Fc"] if fmt.startswith("custom") else ["-Fp", "--clean", "--if-exists"]
        assert self.server.dir is not None
        command = [str(PG_BIN / "pg_dump"), *options, "-h", str(self.server.dir)]
        command += ["-p", str(self.server.port), "-U", SUPERUSER, "-d", self.name]
        data = subprocess.run(command, capture_output=True, check=True).stdout
        return gzip.compress(data) if fmt.endswith("-gzip") else data


def make_bucket(s3: S3Client, *, versioned: bool) -> str:
    """A new bucket with a unique name."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def put(s3: S3Client, bucket: str, key: str, body: bytes, **extra: Any) -> None:
    """Write one object."""
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)


def read(s3: S3Client, bucket: str, key: str) -> bytes | None:
    """An object's content, or None when it is absent (or hidden by a delete marker)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def versions(s3: S3Client, bucket: str) -> set[tuple[str, str]]:
    """Every (key, version id) of the bucket, delete markers included."""
    found: set[tuple[str, str]] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            found.add((item["Key"], item["VersionId"]))
    return found


def objects(s3: S3Client, bucket: str) -> dict[str, bytes]:
    """Every live object's content."""
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def next_second() -> datetime:
    """A time after every write so far and before every write from now on.

    S3 keeps LastModified to the second, so wait for the next second to begin.
    """
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.01)
    return datetime.fromtimestamp(int(now) + 0.5, UTC)


def pg_target(bucket: str, *, safety: bool = True) -> PostgresTarget:
    """A database target whose backups are under `database/` in `bucket`."""
    return PostgresTarget(
        url_secret_ref=SecretKeyRef(name="db", key="url"),
        backups=BackupLocation(bucket=bucket, prefix=PREFIX),
        safety_backup=safety,
    )


def pg_adapter(db: Db, s3: S3Client, bucket: str, **options: Any) -> postgres.PostgresDatabase:
    """The adapter for `db`, backups in `bucket`, tools from the PostgreSQL 15 bin directory."""
    url = options.pop("url", db.url)
    settings = postgres.Options(bin_dir=str(PG_BIN), **options)
    return postgres.PostgresDatabase(pg_target(bucket), url, s3, settings)


def s3_adapter(
    s3: S3Client, bucket: str, *, prefix: str = "", backups: BackupLocation | None = None,
    limits: writes.CopyLimits | None = None,
) -> storage.S3Storage:  # fmt: skip
    """The storage adapter for `bucket`."""
    target = S3Target(bucket=bucket, prefix=prefix, backups=backups)
    options = storage.Options(limits=limits or writes.CopyLimits())
    return storage.S3Storage(target, s3, options)
