"""PostgreSQL with its dumps in S3, and an S3 bucket, as worlds of the contract suite.

Why this module exists: the database and storage adapters run against a real PostgreSQL 15 and
a real S3 API server (the session's, from `tests.services.fixtures`); these worlds give each
test its own database, bucket and history, and read effects where the servers keep them: rows,
dump objects, object versions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from mypy_boto3_s3 import S3Client

from rollback_operator.providers.postgres.database import PostgresDatabase
from rollback_operator.providers.storage.s3 import S3Storage
from sandbox.services.postgres import Db, PostgresServer
from tests.contracts.worlds import DatabaseWords
from tests.db import world as db_world
from tests.db.world import PREFIX

SAFETY_CLOCK_START = datetime(2024, 6, 1, tzinfo=UTC)  # after every backup the tests date


POSTGRES_WORDS = DatabaseWords(
    no_backups="no backups under",
    already_restored="already completed",
    already_dumped="already dumped",
)


@dataclass
class PostgresWorld:
    """One database; its dumps under `database/` in a bucket of their own."""

    db: Db
    s3: S3Client
    bucket: str
    held: dict[str, list[str]] = field(default_factory=dict)  # backup -> its rows
    clock: datetime = SAFETY_CLOCK_START
    words: DatabaseWords = POSTGRES_WORDS

    def target(self) -> PostgresDatabase:
        """The adapter; its clock moves an hour per reading, so a dump taken twice is seen."""
        return db_world.pg_adapter(self.db, self.s3, self.bucket, now=self._tick)

    def write(self, note: str) -> None:
        self.db.seed([note])

    def back_up(self, day: date) -> str:
        name = f"backup_{day:%Y%m%d}.dump"
        db_world.put(self.s3, self.bucket, PREFIX + name, self.db.dump("custom"))
        self.held[name] = self.db.notes()
        return name

    def holds(self, backup: str) -> bool:
        return self.db.notes() == self.held[backup]

    def data(self) -> object:
        return self.db.notes()

    def stored(self) -> list[str]:
        return sorted(key.removeprefix(PREFIX) for key in db_world.objects(self.s3, self.bucket))

    def safety_dumps(self) -> list[str]:
        return [key for key in self.stored() if key.startswith("safety/")]

    def _tick(self) -> datetime:
        self.clock += timedelta(hours=1)
        return self.clock


@contextmanager
def postgres_world(server: PostgresServer, s3: S3Client) -> Iterator[PostgresWorld]:
    """A new empty database and backup bucket; the database is dropped after the block."""
    db = Db(server, f"t_{uuid.uuid4().hex[:12]}")
    server.psql("postgres", f"CREATE DATABASE {db.name}")
    try:
        yield PostgresWorld(db, s3, db_world.make_bucket(s3, versioned=False))
    finally:
        server.psql("postgres", f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")


@dataclass
class S3World:
    """A versioned bucket: `a` and `b` at `as_of`; then `a` changed, `c` added, `b` deleted."""

    s3: S3Client
    bucket: str
    as_of: datetime
    then: dict[str, bytes]
    versions_before: int

    def target(self) -> S3Storage:
        return db_world.s3_adapter(self.s3, self.bucket)

    def is_as_of(self) -> bool:
        return db_world.objects(self.s3, self.bucket) == self.then

    def writes(self) -> int:
        """New versions and delete markers: a restore never removes one."""
        return len(db_world.versions(self.s3, self.bucket)) - self.versions_before


def s3_world(s3: S3Client) -> S3World:
    """The bucket with its history (costs up to a second: S3 keeps time to the second)."""
    bucket = db_world.make_bucket(s3, versioned=True)
    then = {"a": b"a1", "b": b"b1"}
    for key, body in then.items():
        db_world.put(s3, bucket, key, body)
    as_of = db_world.next_second()
    db_world.put(s3, bucket, "a", b"a2")
    db_world.put(s3, bucket, "c", b"c2")
    s3.delete_object(Bucket=bucket, Key="b")
    return S3World(s3, bucket, as_of, then, len(db_world.versions(s3, bucket)))
