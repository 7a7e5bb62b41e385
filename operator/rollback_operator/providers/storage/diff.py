"""What a storage restore must do to each key: the diff between "as it was" and "as it is".

Pure functions over listing pages, so the rules are tested without a server:
- a key whose content at the time differs from today's gets that content copied back;
- a key that did not exist then (or was deleted then) but exists now gets a delete marker;
- a key deleted since gets its old version copied back; everything else is left alone.

Versions arrive from ListObjectVersions one page at a time, sorted by key; `Histories` groups
them into one key's history at a time, so memory stays flat however large the bucket is.
S3 keeps LastModified to the second and boto3 returns versions and delete markers in separate
lists, so two changes of one key within the same second cannot be ordered: the version is then
taken as the newer one (restoring a file rather than hiding it; either way nothing is lost).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

MARKER = "rollback-source-etag"  # metadata on copies whose ETag cannot match their source's


class Kind(StrEnum):
    """What to do with one key."""

    RESTORE = "restore"  # copy the old content over (or back)
    HIDE = "hide"  # put a delete marker on it
    UNCHANGED = "unchanged"
    CHECK = "check"  # same size, ETags not comparable: read the live object's marker


@dataclass(frozen=True)
class Source:
    """The content a key must have: an object, or one version of it."""

    bucket: str
    key: str
    etag: str
    size: int
    version_id: str | None = None

    @property
    def bare_etag(self) -> str:
        """The ETag without quotes, as stored in the marker."""
        return self.etag.strip('"')


@dataclass(frozen=True)
class Live:
    """What a key holds today."""

    etag: str
    size: int


@dataclass(frozen=True)
class Action:
    """One key's part of the restore."""

    kind: Kind
    key: str
    source: Source | None = None
    overwrites: bool = False  # the key holds content today that the action replaces or hides


def multipart_etag(etag: str) -> bool:
    """Whether an ETag is of a multipart upload (`"<md5>-<parts>"`), so not the content's MD5."""
    return "-" in etag


def compare(key: str, want: Source | None, live: Live | None) -> Action:
    """The action that makes `key` hold `want` (None: absent) when it holds `live` today."""
    if want is None:
        return Action(Kind.HIDE, key, overwrites=True) if live else Action(Kind.UNCHANGED, key)
    if live is None:
        return Action(Kind.RESTORE, key, want)
    if live.etag == want.etag:
        return Action(Kind.UNCHANGED, key, want)
    if live.size == want.size and (multipart_etag(live.etag) or multipart_etag(want.etag)):
        return Action(Kind.CHECK, key, want, overwrites=True)
    return Action(Kind.RESTORE, key, want, overwrites=True)


@dataclass(frozen=True)
class Version:
    """One entry of a key's history: an object version or a delete marker."""

    key: str
    version_id: str
    last_modified: datetime
    latest: bool
    deleted: bool
    etag: str = ""
    size: int = 0


def versions_of(page: Mapping[str, Any]) -> list[Version]:
    """A ListObjectVersions page as one list, in key order, each key's entries newest first."""
    entries = [_version(item, deleted=False) for item in page.get("Versions", [])]
    entries += [_version(item, deleted=True) for item in page.get("DeleteMarkers", [])]
    return sorted(entries, key=_newest_first)


def _version(item: Mapping[str, Any], *, deleted: bool) -> Version:
    return Version(
        key=item["Key"],
        version_id=str(item.get("VersionId") or "null"),
        last_modified=item["LastModified"],
        latest=bool(item.get("IsLatest")),
        deleted=deleted,
        etag="" if deleted else str(item.get("ETag", "")),
        size=0 if deleted else int(item.get("Size", 0)),
    )


def _newest_first(entry: Version) -> tuple[str, float, bool]:
    return (entry.key, -entry.last_modified.timestamp(), not entry.latest)


@dataclass
class Histories:
    """Groups a key-ordered stream of versions into whole histories, one key at a time."""

    current: list[Version] = field(default_factory=list)
    oldest: datetime | None = None

    def feed(self, entries: Sequence[Version]) -> list[list[Version]]:
        """The histories completed by `entries` (a key is complete when a later key appears)."""
        done: list[list[Version]] = []
        for entry in entries:
            if self.oldest is None or entry.last_modified < self.oldest:
                self.oldest = entry.last_modified
            if self.current and self.current[0].key != entry.key:
                done.append(sorted(self.current, key=_newest_first))
                self.current = []
            self.current.append(entry)
        return done

    def finish(self) -> list[list[Version]]:
        """The last history."""
        done = [sorted(self.current, key=_newest_first)] if self.current else []
        self.current = []
        return done


def decide(history: Sequence[Version], as_of: datetime, bucket: str) -> Action:
    """The action for one key's history (newest first) to make it as it was at `as_of`."""
    latest = next((v for v in history if v.latest), history[0])
    then = next((v for v in history if v.last_modified <= as_of), None)
    want = None
    if then is not None and not then.deleted:
        want = Source(bucket, then.key, then.etag, then.size, then.version_id)
    live = None if latest.deleted else Live(latest.etag, latest.size)
    if want is not None and live is not None and latest.version_id == want.version_id:
        return Action(Kind.UNCHANGED, latest.key, want)
    return compare(latest.key, want, live)
