"""The database target: PostgreSQL restored from pg_dump backups kept in S3.

Everything that can be checked is checked before the database is touched: the backup exists,
is not empty, its format is recognised, pg_restore can read its table of contents, and the
server answers with the Secret's credentials. The safety dump streams from pg_dump to S3 and is
verified after the upload. A restore streams from S3 into pg_restore or psql in one transaction,
so a failed restore changes nothing, and a completed one leaves a marker so it never runs twice.
It replaces whole schemas (`schemas`, or every schema the backup holds) and nothing else, as
`scope` and `contents` explain; the safety dump holds the schemas a restore could replace.
Which object is the backup to take is `backups`' question.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rollback_operator.api.rollback import DatabasePlan
from rollback_operator.api.targets import PostgresTarget
from rollback_operator.providers.base import Candidate, StepResult
from rollback_operator.providers.context import BuildContext
from rollback_operator.providers.errors import (
    ProviderError,
    RetryableError,
)
from rollback_operator.providers.objectstore import layout, s3api
from rollback_operator.providers.postgres import (
    backups,
    carried,
    contents,
    dumps,
    locks,
    safety,
    scope,
    server,
    tools,
)
from rollback_operator.providers.postgres.backups import Backup
from rollback_operator.providers.postgres.dumps import DumpFormat
from rollback_operator.providers.postgres.points import PointDumps

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROVIDER = "postgres"
_TOC_WINDOW = 4 << 20


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _tool_env() -> dict[str, str]:
    # What the client tools inherit: enough to find binaries and CA files, no PG* variables.
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}


@dataclass(frozen=True)
class Options:
    """Tuning and seams: where the tools are, chunk and upload sizes, the clock."""

    bin_dir: str | None = None
    chunk_size: int = s3api.CHUNK
    upload_part_size: int = 16 << 20  # 10,000 parts of 16 MiB: dumps up to 160 GiB
    upload_concurrency: int = 4
    connect_timeout: int = 10
    lock_wait_limit: float = 60.0  # longest wait behind another session's table lock, seconds
    now: Callable[[], datetime] = _utcnow
    environ: Mapping[str, str] = field(default_factory=_tool_env)


class PostgresDatabase(PointDumps):
    """`Database` for PostgreSQL, with backups under `target.backups` in the object store."""

    def __init__(
        self, target: PostgresTarget, url: str, s3: S3Client, options: Options | None = None
    ) -> None:
        self.options = options or Options()
        self.dsn = server.Dsn.parse(url, connect_timeout=self.options.connect_timeout)
        self.bucket, self.prefix = target.backups.bucket, target.backups.prefix
        self.dumps_first = target.safety_backup
        self.schemas = list(target.schemas) if target.schemas else None
        self.s3 = s3
        self.backups = backups.BackupFolder(s3, self.bucket, self.prefix)

    async def plan(self, pin: str | None) -> DatabasePlan:
        backup = await self._inspect(await self.backups.find(pin))
        await server.ping(self.dsn)
        await server.check_session_pooling(self.dsn)
        schemas = await self._scope(backup)
        kept = await scope.check(self.dsn, schemas)
        if kept:
            carried.require_functions(kept, await self._entries(backup), backup.name)
        return DatabasePlan(
            schemas=schemas,
            backup=backup.name,
            taken_at=backup.taken_at,
            size_bytes=backup.size,
            format=backup.format.value if backup.format else None,
            safety_backup=self.dumps_first,
            carried_triggers=[t.describe() for t in kept] or None,
        )

    async def safety_backup(self, key: str) -> StepResult:
        rollback = layout.rollback_of(key)
        existing = await self._existing_safety(rollback)
        if existing is not None:
            return self._safety_result(existing, "already dumped the current database to")
        await server.ping(self.dsn)
        object_key = layout.safety_key(self.prefix, rollback, self.options.now())
        await self._dump(object_key, key)
        name = layout.backup_name(self.prefix, object_key)
        dump = await self._inspect(await self.backups.find(name))
        return self._safety_result(dump, "dumped the current database to")

    async def restore(self, backup: str, key: str) -> StepResult:
        done = await server.finished_restore(self.dsn, key)
        if done is not None:
            restored, when = done
            message = f"restore already completed at {when.isoformat()} from {restored}"
            return StepResult(message, {"backup": restored})
        found = await self.backups.find(backup)
        if found.size == 0:
            raise dumps.BadDump(f"backup {backup} is empty", provider=PROVIDER)
        await server.ping(self.dsn)
        started = time.monotonic()
        fmt, schemas = await self._apply(found, key)
        took = time.monotonic() - started
        kept = [t.describe() for t in await scope.carried_over(self.dsn, schemas)]
        message = (
            f"restored {backup} ({fmt}, {backups.size(found.size)}) into "
            f"{self.dsn.describe()} in {took:.1f}s"
            + (f", carrying over {'; '.join(kept)}" if kept else "")
        )
        return StepResult(message, {"backup": backup})

    async def candidates(self, limit: int) -> list[Candidate]:
        return await self.backups.candidates(limit)

    # ----- checking backups -----

    async def _inspect(self, backup: Backup) -> Backup:
        """The backup with its format, after every check that can be made without changes."""
        if backup.size == 0:
            raise dumps.BadDump(f"backup {backup.name} is empty", provider=PROVIDER)
        header = await s3api.read_range(
            "reading backup", self.s3, self.bucket, backup.key, dumps.HEADER_BYTES
        )
        checked = dataclasses.replace(backup, format=dumps.detect(header, backup.name))
        if checked.format and checked.format.archive:
            checked = dataclasses.replace(checked, entries=tuple(await self._check_toc(checked)))
        return checked

    async def _check_toc(self, backup: Backup) -> list[contents.Entry]:
        command = tools.list_command(tools.tool("pg_restore", self.options.bin_dir))
        chunks = self._chunks(backup, window=_TOC_WINDOW)  # the TOC is at the start: read a bit
        doing, env = f"reading the table of contents of {backup.name}", dict(self.options.environ)
        try:
            toc = b"".join([c async for c in tools.converted(command, env, chunks, doing)])
        except ProviderError as error:
            raise dumps.BadDump(self.dsn.redact(error.message), provider=PROVIDER) from None
        return contents.archive_entries(toc.decode("utf-8", "replace"))

    async def _readied(self, backup: Backup, first: bytes) -> Backup:
        """`backup` with its format, read from its `first` chunk, and for an archive its table
        of contents: from that chunk when it holds all of it, else read again."""
        checked = dataclasses.replace(backup, format=dumps.detect(first, backup.name))
        if not checked.format or not checked.format.archive or checked.entries:
            return checked
        command = tools.list_command(tools.tool("pg_restore", self.options.bin_dir))
        environ, head = dict(self.options.environ), self._filtered(checked, dumps.once(first))
        try:
            toc = b"".join([c async for c in tools.converted(command, environ, head, "")])
        except ProviderError:  # the chunk ends inside the table of contents
            return dataclasses.replace(checked, entries=tuple(await self._check_toc(checked)))
        entries = contents.archive_entries(toc.decode("utf-8", "replace"))
        return dataclasses.replace(checked, entries=tuple(entries))

    async def _scope(self, backup: Backup) -> list[str]:
        """The schemas a restore of `backup` replaces: the target's, or all the backup holds."""
        if self.schemas is not None:
            return self.schemas
        if backup.format and backup.format.archive:
            held = contents.held_schemas(backup.entries, skip=server.SCHEMA)
        else:
            headers = contents.plain_headers(self._chunks(backup, window=_TOC_WINDOW))
            held = contents.held_schemas([e async for e in headers], skip=server.SCHEMA)
        if not held:
            raise dumps.BadDump(f"backup {backup.name} holds no schema", provider=PROVIDER)
        return held

    async def _entries(self, backup: Backup) -> Sequence[contents.Entry]:
        """The objects the backup holds: an archive's table of contents, or a plain dump's
        headers up to its first data (which name every routine)."""
        if backup.format and backup.format.archive:
            return backup.entries
        return [e async for e in contents.plain_headers(self._chunks(backup, window=_TOC_WINDOW))]

    def _chunks(self, backup: Backup, *, window: int | None = None) -> AsyncIterator[bytes]:
        return self._filtered(backup, self._download(backup, window=window))

    def _download(self, backup: Backup, *, window: int | None = None) -> AsyncIterator[bytes]:
        what, key, size = "downloading backup", backup.key, backup.size
        if window is not None:
            return s3api.windows(what, self.s3, self.bucket, key, size, window=window)
        chunk = self.options.chunk_size
        return s3api.stream(what, self.s3, self.bucket, key, size, chunk=chunk)

    def _filtered(self, backup: Backup, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        if backup.format and backup.format.gzipped:
            chunks = dumps.gunzip(chunks, backup.name, _offload)
        if backup.format and not backup.format.archive:
            chunks = dumps.require_trailer(chunks, backup.name)
        return chunks

    # ----- restoring -----

    async def _apply(
        self, backup: Backup, key: str, schemas: Sequence[str] | None = None
    ) -> tuple[DumpFormat, list[str]]:
        """Stream the backup into psql with the restore marker, all in one transaction,
        replacing `schemas` (default: every schema the backup holds); its format and the
        schemas replaced.

        The first chunk names the format (and is checked), and holds an archive's table of
        contents, before any tool starts, so one download serves the checks and the restore.
        An archive goes through pg_restore's script on the way; a plain dump is the script.
        The marker is recorded in the same transaction: a restore that committed is never run
        again, whenever the operator dies, and one that did not commit left nothing behind.
        """
        download = self._download(backup)
        try:
            first = await anext(download, b"")
            checked = await self._readied(backup, first)
            schemas = list(schemas) if schemas is not None else await self._scope(checked)
        except BaseException:
            await dumps.close_stream(download)
            raise
        assert checked.format is not None
        archive = checked.format.archive
        chunks = self._filtered(checked, dumps.prepend(first, download))
        application = f"{server.APPLICATION} restore {uuid.uuid4().hex[:12]}"
        watch = locks.LockWatch(self.dsn, application, self.options.lock_wait_limit)
        variables = {server.MARKER_KEY: key, server.MARKER_BACKUP: backup.name}
        variables[scope.SCHEMAS_VARIABLE] = json.dumps(schemas)
        with (
            server.tool_credentials(self.dsn, self.options.environ, application) as (env, dbname),
            tempfile.TemporaryDirectory(prefix="rollback-list-") as lists,
        ):
            psql = tools.psql_command(tools.tool("psql", self.options.bin_dir), dbname, variables)
            use_list = os.path.join(lists, "use-list")
            selection = contents.Selection(schemas, checked.entries, use_list)
            script = tools.transaction(self._script(archive, chunks, env, backup.name, selection))
            async with locks.watching(watch):
                outcome = await tools.feed(psql, env, script)
        if watch.blockers is not None:
            raise RetryableError(watch.reason(f"restoring {backup.name}"), provider=PROVIDER)
        outcome = dataclasses.replace(outcome, stderr=self.dsn.redact(outcome.stderr))
        if outcome.failed:
            raise outcome.as_error(f"restoring {backup.name}")
        return checked.format, schemas

    def _script(
        self,
        archive: bool,
        chunks: AsyncIterator[bytes],
        env: dict[str, str],
        name: str,
        selection: contents.Selection,
    ) -> AsyncIterator[bytes]:
        """The SQL psql runs inside the restore's transaction: the marker, the prelude that
        keeps the triggers carried over and empties the restored schemas, the archive's script
        of their objects (without its COMMIT), then the carried triggers created again; or the
        prelude, a plain dump narrowed to those schemas, the triggers, then the marker (after
        them, so a dump that recreates the marker's table cannot drop the new row)."""
        prelude = dumps.once(scope.prelude_sql())
        recreate = dumps.once(carried.recreate_sql())
        if archive:
            pg_restore = tools.tool("pg_restore", self.options.bin_dir)
            use_list = selection.write_use_list()
            command = tools.script_command(
                pg_restore, exclude_schema=server.SCHEMA, use_list=use_list
            )
            script = dumps.open_ended(
                tools.converted(command, env, chunks, f"restoring {name}"), name
            )
            return dumps.chain(dumps.once(server.marker_sql()), prelude, script, recreate)
        narrowed = contents.narrowed(chunks, selection.schemas)
        return dumps.chain(prelude, narrowed, recreate, dumps.once(server.marker_sql()))

    # ----- safety dumps -----

    async def _existing_safety(self, rollback: str) -> Backup | None:
        prefix = layout.safety_prefix(self.prefix, rollback)
        paginated = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        async for page in s3api.pages("listing safety dumps", paginated):
            for item in page.get("Contents", []):
                name = layout.backup_name(self.prefix, item["Key"])
                found = Backup(name, item["Key"], item.get("Size", 0), item["LastModified"])
                try:
                    return await self._inspect(found)
                except dumps.BadDump:
                    continue  # an unusable leftover: dump again under a new name
        return None

    async def _dump(self, object_key: str, step_key: str) -> None:
        """pg_dump of what a restore could replace, streamed to `object_key` (`safety`)."""
        upload = safety.Upload(
            self.s3, self.bucket, object_key, step_key,
            self.options.upload_part_size, self.options.upload_concurrency,
        )  # fmt: skip
        await safety.dump(
            self.dsn, upload,
            pg_dump=tools.tool("pg_dump", self.options.bin_dir),
            left_out=await safety.left_out(self.dsn, self.schemas),
            lock_wait=self.options.lock_wait_limit,
            environ=self.options.environ,
        )  # fmt: skip

    def _safety_result(self, dump: Backup, did: str) -> StepResult:
        message = f"{did} s3://{self.bucket}/{dump.key} ({backups.size(dump.size)})"
        return StepResult(message, {"safetyBackup": dump.name})


async def _offload(work: Callable[[], bytes]) -> bytes:
    return await asyncio.to_thread(work)


async def build(target: PostgresTarget, context: BuildContext) -> PostgresDatabase:
    """The adapter of a policy's `targets.database.postgres` block."""
    url = await context.secret(target.url_secret_ref)
    return PostgresDatabase(target, url, await context.object_store("targets.database"))


async def sql_url(target: PostgresTarget, context: BuildContext) -> str:
    """The connection string verification's SQL checks use."""
    return await context.secret(target.url_secret_ref)
