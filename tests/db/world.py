"""Builders for the database and storage tests: seeded databases, dumps, buckets, adapters.

Tests say what the world looks like (`db.seed(["a", "b"])`, `world.put(s3, bucket, key, b"x")`)
and what they expect, and leave the mechanics here.
"""

from __future__ import annotations

import urllib.parse
import uuid
from datetime import datetime
from typing import Any

from mypy_boto3_s3 import S3Client

from rollback_operator.api.common import SecretKeyRef
from rollback_operator.api.targets import BackupLocation, PostgresTarget, S3Target
from rollback_operator.providers.objectstore import layout
from rollback_operator.providers.postgres import database as postgres
from rollback_operator.providers.storage import s3 as storage
from rollback_operator.providers.storage import writes
from sandbox.services.postgres import PG_BIN
from sandbox.services.postgres import Db as Db  # the demo's too; re-exported for the tests
from sandbox.services.s3 import next_second as next_second
from sandbox.services.s3 import objects as objects
from sandbox.services.s3 import put as put
from sandbox.services.s3 import versions as versions
from tests.db import supabase

PREFIX = "database/"


def make_bucket(s3: S3Client, *, versioned: bool) -> str:
    """A new bucket with a unique name."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def report_key(rollback: dict[str, Any]) -> str:
    """The key of the archived report of `rollback` (a Rollback as the API server returns it)."""
    meta = rollback["metadata"]
    created = datetime.fromisoformat(meta["creationTimestamp"])
    return layout.report_key(meta["namespace"], meta["name"], created, meta["uid"])


def read(s3: S3Client, bucket: str, key: str) -> bytes | None:
    """An object's content, or None when it is absent (or hidden by a delete marker)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def pg_target(
    bucket: str, *, safety: bool = True, prefix: str = PREFIX, schemas: list[str] | None = None
) -> PostgresTarget:
    """A database target whose backups are under `prefix` (`database/`) in `bucket`."""
    return PostgresTarget(
        url_secret_ref=SecretKeyRef(name="db", key="url"),
        backups=BackupLocation(bucket=bucket, prefix=prefix),
        safety_backup=safety,
        schemas=schemas,
    )


def password_of(db: Db) -> str:
    """The password in `db`'s URL."""
    return urllib.parse.urlsplit(db.url).password or ""


def pg_adapter(db: Db, s3: S3Client, bucket: str, **options: Any) -> postgres.PostgresDatabase:
    """The adapter for `db`, backups in `bucket`, tools from the PostgreSQL 15 bin directory;
    for a Supabase-shaped `db`, as its app's role restoring `public` (`schemas=` overrides)."""
    url = options.pop("url", db.url)
    default = supabase.RESTORED if isinstance(db, supabase.SupabaseDb) else None
    schemas = options.pop("schemas", default)
    target = pg_target(bucket, prefix=options.pop("prefix", PREFIX), schemas=schemas)
    settings = postgres.Options(bin_dir=str(PG_BIN), **options)
    return postgres.PostgresDatabase(target, url, s3, settings)


def s3_adapter(
    s3: S3Client, bucket: str, *, prefix: str = "", backups: BackupLocation | None = None,
    limits: writes.CopyLimits | None = None,
) -> storage.S3Storage:  # fmt: skip
    """The storage adapter for `bucket`."""
    target = S3Target(bucket=bucket, prefix=prefix, backups=backups)
    options = storage.Options(limits=limits or writes.CopyLimits())
    return storage.S3Storage(target, s3, options)
