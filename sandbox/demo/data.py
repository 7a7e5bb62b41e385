"""The app's data for the demo: users in PostgreSQL, avatars in a versioned bucket, a backup.

Why this module exists: a full rollback is only convincing when you can see what it undid. At
the start the demo seeds good data, takes a real `pg_dump` into the backups bucket (named with
its time, which the operator reads as the backup's time and so as the storage restore point),
and waits a second so later writes are clearly after it. When the incident begins, the bad
release writes bad rows and overwrites and adds files; after the rollback `snapshot()` shows
what is there, to compare with what was there at backup time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mypy_boto3_s3 import S3Client

from sandbox.demo.policy import BACKUPS, DB_PREFIX, FILES
from sandbox.services import s3 as buckets
from sandbox.services.postgres import Db, PostgresServer

GOOD_USERS = ["alice", "bob", "carol"]
BAD_USERS = ["corrupt-1", "corrupt-2"]
GOOD_FILES = {"avatars/alice.png": b"alice-v1", "avatars/bob.png": b"bob-v1"}
BAD_FILES = {"avatars/alice.png": b"\x00garbage", "avatars/spam.png": b"spam"}
DATABASE = "mindmate"


@dataclass(frozen=True)
class Snapshot:
    """What the app's data looks like at one moment."""

    users: list[str]
    files: dict[str, bytes]

    def lines(self) -> list[str]:
        files = ", ".join(f"{k} ({v[:10]!r})" for k, v in sorted(self.files.items()))
        return [f"users: {', '.join(self.users)}", f"files: {files}"]


@dataclass
class Data:
    """The app's database and buckets."""

    db: Db
    s3: S3Client
    backup: str = ""

    @classmethod
    def create(cls, server: PostgresServer, s3: S3Client) -> Data:
        """An empty `mindmate` database and the two buckets (files versioned)."""
        server.psql("postgres", f"CREATE DATABASE {DATABASE}")
        s3.create_bucket(Bucket=BACKUPS)
        s3.create_bucket(Bucket=FILES)
        s3.put_bucket_versioning(Bucket=FILES, VersioningConfiguration={"Status": "Enabled"})
        return cls(Db(server, DATABASE), s3)

    def seed_and_back_up(self) -> str:
        """Good users and files, then a pg_dump of them in the backups bucket; its name."""
        values = ", ".join(f"('{u}')" for u in GOOD_USERS)
        self.db.sql("CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);"
                    f" INSERT INTO users (name) VALUES {values};")  # fmt: skip
        for name, body in GOOD_FILES.items():
            buckets.put(self.s3, FILES, name, body)
        buckets.next_second()  # the files' times (whole seconds) are all before this second
        self.backup = f"mindmate_{datetime.now(UTC):%Y%m%d_%H%M%S}.dump"
        buckets.put(self.s3, BACKUPS, DB_PREFIX + self.backup, self.db.dump("custom"))
        buckets.next_second()  # everything written from now on is after the backup's time
        return self.backup

    def damage(self) -> None:
        """What the bad release does: bad rows, an overwritten and a new file."""
        values = ", ".join(f"('{u}')" for u in BAD_USERS)
        self.db.sql(f"INSERT INTO users (name) VALUES {values}")
        for name, body in BAD_FILES.items():
            buckets.put(self.s3, FILES, name, body)

    def snapshot(self) -> Snapshot:
        out = self.db.sql("SELECT coalesce(string_agg(name, ',' ORDER BY id), '') FROM users")
        return Snapshot([u for u in out.strip().split(",") if u], buckets.objects(self.s3, FILES))

    def versions(self) -> set[tuple[str, str]]:
        """Every (key, version id) of the files bucket, delete markers included."""
        return buckets.versions(self.s3, FILES)


def at_backup() -> Snapshot:
    """What the data looked like when the backup was taken."""
    return Snapshot(list(GOOD_USERS), dict(GOOD_FILES))
