"""Restore point dumps: the operator's own backups of the database, beside the team's.

A RestorePoint's dump is the safety dump's stream (pg_dump to S3 in parts, never held in
memory, verified after the upload) written to `<prefix>restore-points/<point>.dump`. The
object carries the key of the restore point that wrote it, so a point never overwrites, and
retention never deletes, a dump another point wrote (one deleted and made again under the same
name, say). This is a mixin of `PostgresDatabase`, which owns the streaming code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from rollback_operator.providers.base import PointDump
from rollback_operator.providers.errors import NotFoundError, PermanentError
from rollback_operator.providers.objectstore import layout, s3api
from rollback_operator.providers.postgres import dumps, server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from rollback_operator.providers.postgres.backups import Backup, BackupFolder
    from rollback_operator.providers.postgres.database import Options

PROVIDER = "postgres"
KEY_METADATA = "rollback-key"  # what the safety dump's upload records of the step key


class _Host(Protocol):
    """What the dumps need of the adapter they are mixed into."""

    s3: S3Client
    bucket: str
    prefix: str
    dsn: server.Dsn
    options: Options
    backups: BackupFolder

    async def _dump(self, object_key: str, step_key: str) -> None: ...

    async def _inspect(self, backup: Backup) -> Backup: ...


class PointDumps:
    """`Database.dump_point` and `drop_point` over the adapter's safety dump stream."""

    async def dump_point(self: _Host, point: str, key: str) -> PointDump:
        name = layout.point_dump_name(point)
        object_key = layout.backup_key(self.prefix, name)
        head = await _head(self.s3, self.bucket, object_key)
        if head is not None and _writer(head) != key:
            raise PermanentError(
                f"s3://{self.bucket}/{object_key} holds a dump another restore point wrote "
                "(one of the same name, since deleted?); it was left as it is: delete it or "
                "take this point under another name",
                provider=PROVIDER,
            )
        if head is not None:
            try:
                dump = await self._inspect(await self.backups.named(name))
                return PointDump(name, dump.size, head["LastModified"])
            except dumps.BadDump:
                pass  # an unusable dump of ours: take it again
        await server.ping(self.dsn)
        started = self.options.now()
        await self._dump(object_key, key)
        dump = await self._inspect(await self.backups.named(name))
        return PointDump(name, dump.size, started)

    async def drop_point(self: _Host, point: str, key: str) -> bool:
        object_key = layout.backup_key(self.prefix, layout.point_dump_name(point))
        head = await _head(self.s3, self.bucket, object_key)
        if head is None or _writer(head) != key:
            return False
        what = f"deleting s3://{self.bucket}/{object_key}"
        await s3api.call(what, self.s3.delete_object, Bucket=self.bucket, Key=object_key)
        return True


async def _head(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        what = "reading a restore point dump"
        found = await s3api.call(what, s3.head_object, Bucket=bucket, Key=key)
    except NotFoundError:
        return None
    return dict(found)


def _writer(head: dict[str, Any]) -> str | None:
    metadata: dict[str, str] = head.get("Metadata", {})
    return metadata.get(KEY_METADATA)
