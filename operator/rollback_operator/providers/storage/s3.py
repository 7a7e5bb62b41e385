"""The storage target: an S3 bucket (or a prefix of it) restored to a point in time.

Two sources of the past: object versions (the default; the bucket must be versioned) or dated
backup folders `<backups.prefix>YYYYMMDD/`. Either way the restore is a diff (`s3_diff`) carried
out with server-side copies and delete markers (`s3_copy`), never deleting a version, with a
bounded number of copies in flight. Every check runs over the whole listing before the first
write (the work found is spooled to disk, so the bucket is listed once), and a second run finds
nothing left to do, so a restore cut short is simply run again.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rollback_operator.api.rollback import StoragePlan
from rollback_operator.api.targets import S3Target
from rollback_operator.providers import base
from rollback_operator.providers.base import PointCopy, StepResult
from rollback_operator.providers.context import BuildContext
from rollback_operator.providers.errors import PermanentError, first_provider_error
from rollback_operator.providers.objectstore import layout, s3api
from rollback_operator.providers.storage import dated, diff, snapshots, spool, writes
from rollback_operator.providers.storage.diff import Action, Kind

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROVIDER = "s3"
VERSIONS = base.VERSIONS_SOURCE


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Options:
    """Copies in flight, copy limits and the clock."""

    concurrency: int = 16
    limits: writes.CopyLimits = field(default_factory=writes.CopyLimits)
    now: Callable[[], datetime] = _utcnow


@dataclass
class Tally:
    """Counts and bytes per kind of action."""

    restore: int = 0
    hide: int = 0
    unchanged: int = 0
    restore_bytes: int = 0
    overwrites: int = 0

    def add(self, action: Action) -> None:
        """Count one action (a CHECK counts as a restore until it is resolved)."""
        if action.kind is Kind.HIDE:
            self.hide += 1
        elif action.kind is Kind.UNCHANGED:
            self.unchanged += 1
        else:
            self.restore += 1
            self.restore_bytes += action.source.size if action.source else 0
        self.overwrites += int(action.overwrites and action.kind is not Kind.UNCHANGED)


class S3Storage:
    """`Storage` for one bucket and prefix, from object versions or dated backups."""

    def __init__(self, target: S3Target, s3: S3Client, options: Options | None = None) -> None:
        self.target, self.s3 = target, s3
        self.options = options or Options()
        self.dated = dated.DatedBackups(s3, target) if target.backups else None

    async def plan(self, as_of: datetime, source: str | None = None) -> StoragePlan:
        survey, source, _ = await self._survey(as_of, source=source)
        return StoragePlan(
            as_of=as_of,
            objects_to_restore=survey.restore,
            objects_to_hide=survey.hide,
            objects_unchanged=survey.unchanged,
            bytes_to_restore=survey.restore_bytes,
            source=source,
        )

    async def restore(self, as_of: datetime, key: str, source: str | None = None) -> StepResult:
        with spool.Spool() as work:
            survey, source, versioned = await self._survey(as_of, work, source)
            if not versioned and survey.overwrites:
                raise PermanentError(
                    f"s3://{self.target.bucket} is not versioned: restoring would overwrite "
                    f"{survey.overwrites} existing object(s) for good; enable versioning first",
                    provider=PROVIDER,
                )
            done = await self._execute(work.replay())
            done.unchanged += survey.unchanged
        message = (
            f"restored {done.restore} objects ({done.restore_bytes} bytes) and hid {done.hide} "
            f"as of {as_of.isoformat()} from {source}; {done.unchanged} already as they were"
        )
        return StepResult(message, {"asOf": as_of.isoformat(), "source": source})

    async def snapshot(self, at: datetime, point: str, key: str) -> PointCopy:
        versioned = await self._versioned()
        return await self._snapshots().take(at, point, versioned=versioned)

    async def drop_snapshot(self, at: datetime, point: str, key: str) -> int:
        if self.target.backups is None:
            return 0  # no folder was ever made: a point here needs versions
        return await self._snapshots().drop(
            layout.point_folder(self.target.backups.prefix, at, point)
        )

    def _snapshots(self) -> snapshots.Snapshots:
        concurrency, limits = self.options.concurrency, self.options.limits
        return snapshots.Snapshots(self.s3, self.target, concurrency, limits)

    # ----- checks and the diff -----

    async def _survey(
        self, as_of: datetime, work: spool.Spool | None = None, source: str | None = None
    ) -> tuple[Tally, str, bool]:
        """The whole diff counted (and kept in `work`), after every check; raises before any
        change. `source`: versions, or the dated folder to read; None: chosen here."""
        if as_of > self.options.now():
            raise PermanentError(f"asOf {as_of.isoformat()} is in the future", provider=PROVIDER)
        versioned = await self._versioned()
        if source is not None and source != VERSIONS:
            folder = self._named_folder(source)
            assert self.dated is not None
            actions = self.dated.actions(folder, hide=versioned)
            return await self._tally(actions, work), folder, versioned
        if self.dated is not None and source is None:
            folder = await self.dated.folder(as_of)
            actions = self.dated.actions(folder, hide=versioned)
            return await self._tally(actions, work), folder, versioned
        if not versioned:
            raise PermanentError(
                f"s3://{self.target.bucket} has no object versioning, so it has no past to "
                "restore; enable versioning or configure dated backups",
                provider=PROVIDER,
            )
        histories = diff.Histories()
        tally = await self._tally(self._version_actions(as_of, histories), work)
        if histories.oldest is not None and as_of < histories.oldest:
            raise PermanentError(
                f"asOf {as_of.isoformat()} is before the oldest version "
                f"({histories.oldest.isoformat()}): the bucket has no state that old",
                provider=PROVIDER,
            )
        return tally, VERSIONS, versioned

    def _named_folder(self, folder: str) -> str:
        """A dated folder a plan named, checked to be one of `backups`' folders."""
        backups = self.target.backups
        inside = backups is not None and folder.startswith(backups.prefix)
        name = folder[len(backups.prefix) :] if backups is not None and inside else ""
        dated_name = layout.folder_day("", name) is not None or layout.is_point_folder("", name)
        if not (inside and dated_name):
            raise PermanentError(
                f"{folder!r} is not a dated folder of spec.targets.storage.s3.backups",
                provider=PROVIDER,
            )
        return folder

    async def _versioned(self) -> bool:
        answer = await s3api.call(
            "reading bucket versioning", self.s3.get_bucket_versioning, Bucket=self.target.bucket
        )
        return answer.get("Status") == "Enabled"

    async def _tally(self, actions: AsyncIterator[Action], work: spool.Spool | None) -> Tally:
        tally = Tally()
        async for action in actions:
            if action.kind is Kind.CHECK:
                action = await s3api.call("checking a restored object", self._resolve, action)
            tally.add(action)
            if work is not None:
                work.add(action)
        return tally

    def _resolve(self, action: Action) -> Action:
        assert action.source is not None
        if writes.already_copied(self.s3, self.target.bucket, action.key, action.source):
            return Action(Kind.UNCHANGED, action.key, action.source)
        return Action(Kind.RESTORE, action.key, action.source, action.overwrites)

    async def _version_actions(
        self, as_of: datetime, histories: diff.Histories
    ) -> AsyncIterator[Action]:
        listing = self.s3.get_paginator("list_object_versions").paginate(
            Bucket=self.target.bucket, Prefix=self.target.prefix
        )
        bucket = self.target.bucket
        async for page in s3api.pages("listing object versions", listing):
            for history in histories.feed(diff.versions_of(page)):
                yield diff.decide(history, as_of, bucket)
        for history in histories.finish():
            yield diff.decide(history, as_of, bucket)

    # ----- carrying it out -----

    async def _execute(self, actions: AsyncIterator[Action]) -> Tally:
        """Apply every action with at most `concurrency` writes in flight."""
        done = Tally()
        slots = asyncio.Semaphore(self.options.concurrency)
        pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="s3-restore")
        try:
            async with asyncio.TaskGroup() as group:
                async for action in actions:
                    if action.kind is Kind.UNCHANGED:
                        done.add(action)
                        continue
                    await slots.acquire()
                    group.create_task(self._apply(action, pool, slots, done))
        except BaseExceptionGroup as group:
            raise first_provider_error(group) or group from None
        finally:
            await _close(pool)
        return done

    async def _apply(
        self, action: Action, pool: ThreadPoolExecutor, slots: asyncio.Semaphore, done: Tally
    ) -> None:
        try:
            work = functools.partial(
                writes.apply, self.s3, self.target.bucket, action, self.options.limits
            )
            done.add(await asyncio.get_running_loop().run_in_executor(pool, work))
        finally:
            slots.release()


async def _close(pool: ThreadPoolExecutor) -> None:
    """Drop the queued copies and wait for those in flight in a thread, never on the event loop
    (`with ThreadPoolExecutor` would block it, and with it /healthz and peering, until a stuck
    S3 call gave up); if the wait itself is cancelled, the copies end on their own."""
    pool.shutdown(wait=False, cancel_futures=True)
    await asyncio.to_thread(pool.shutdown, wait=True)


async def build(target: S3Target, context: BuildContext) -> S3Storage:
    """The adapter of a policy's `targets.storage.s3` block."""
    return S3Storage(target, await context.object_store("targets.storage"))


async def probe(target: S3Target, context: BuildContext) -> Callable[[], Awaitable[str]]:
    """The verification check that the files bucket lists and reads."""
    s3 = await context.object_store("targets.storage")
    bucket, prefix = target.bucket, target.prefix

    async def check() -> str:
        listed = await s3api.call(
            "verify storage", s3.list_objects_v2, Bucket=bucket, Prefix=prefix, MaxKeys=1
        )
        contents = listed.get("Contents", [])
        if not contents:
            return f"s3://{bucket}/{prefix} lists (empty)"
        key = contents[0]["Key"]
        await s3api.call("verify storage", s3.head_object, Bucket=bucket, Key=key)
        return f"s3://{bucket}/{prefix} lists and reads ({key})"

    return check
