"""The dump of the current database, streamed from pg_dump to S3: the safety dump before a
restore, and a restore point's dump.

It holds what a restore could replace, so that restoring it undoes the restore under the same
rules: the target's `schemas`, or else every schema whose objects the role may all drop
(`scope.user_schemas`). pg_dump's output goes to S3 in parts as it is written, never held
in memory; a failed pg_dump aborts the upload, so no complete-looking object is left behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, cast

from boto3.s3.transfer import TransferConfig

from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.objectstore import s3api
from rollback_operator.providers.postgres import scope, server, tools

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROVIDER = "postgres"


@dataclass(frozen=True)
class Upload:
    """Where the dump goes and how: bucket and key, the step key it records, part sizes."""

    s3: S3Client
    bucket: str
    object_key: str
    step_key: str
    part_size: int
    concurrency: int

    def config(self) -> TransferConfig:
        """boto3's multipart settings for the upload."""
        return TransferConfig(
            multipart_threshold=self.part_size,
            multipart_chunksize=self.part_size,
            max_concurrency=self.concurrency,
        )


async def left_out(dsn: server.Dsn, schemas: Sequence[str] | None) -> list[str]:
    """The user schemas the dump leaves out: those not in `schemas`, or when it is None, those
    holding an object the role may not drop. (Left out rather than the others picked: a
    schema picked by name is dumped with its CREATE SCHEMA, which `public` already has.)"""
    found = await scope.user_schemas(dsn)
    kept = [name for name, ok in found if (name in schemas if schemas else ok)]
    if not kept:
        raise PermanentError(
            f"the database role owns no schema's objects at {dsn.describe()}: nothing a "
            "restore could replace, so nothing to dump",
            provider=PROVIDER,
        )
    return [name for name, _ in found if name not in kept]


async def dump(
    dsn: server.Dsn,
    upload: Upload,
    *,
    pg_dump: str,
    left_out: Sequence[str],
    lock_wait: float,
    environ: Mapping[str, str],
) -> None:
    """Run pg_dump of the database but the schemas `left_out` and stream its output to S3 as
    `upload` says."""
    extra = {
        "Metadata": {"rollback-key": upload.step_key},
        "ContentType": "application/octet-stream",
    }
    with server.tool_credentials(dsn, environ) as (env, dbname):
        command = tools.dump_command(
            pg_dump, dbname, exclude_schema=server.SCHEMA, lock_wait=lock_wait, left_out=left_out
        )

        def run() -> None:
            stream = tools.DumpStream(command, env)
            try:  # boto3 only calls read(): the stream is file-like enough
                body = cast("IO[bytes]", stream)
                upload.s3.upload_fileobj(
                    body, upload.bucket, upload.object_key, ExtraArgs=extra, Config=upload.config()
                )
            finally:
                stream.close()

        try:
            await s3api.call("uploading the safety dump", run)
        except tools.DumpFailed as error:
            raise PermanentError(dsn.redact(error.message), provider=PROVIDER) from None
