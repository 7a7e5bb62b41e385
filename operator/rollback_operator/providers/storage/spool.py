"""The storage restore's work list, kept on local disk between the survey and the writes.

Every check of a restore needs the whole listing (is the time before the oldest version? would
an unversioned bucket lose data?), and listing a large bucket is the slow part, so the survey
writes each action it finds to a temporary file and the writes replay that file: one listing,
memory flat in the number of objects, and exactly the surveyed work is done.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from types import TracebackType

from rollback_operator.providers.storage.diff import Action, Kind, Source


class Spool:
    """Actions appended one by one, then replayed in the same order."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed by __exit__

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._file.close()

    def add(self, action: Action) -> None:
        """Keep one action for the replay (unchanged keys need no work and are not kept)."""
        if action.kind is not Kind.UNCHANGED:
            self._file.write(json.dumps(_encode(action)) + "\n")

    async def replay(self) -> AsyncIterator[Action]:
        """The kept actions, in the order they were added."""
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield _decode(json.loads(line))


def _encode(action: Action) -> dict[str, object]:
    source = action.source
    fields = (
        (source.bucket, source.key, source.etag, source.size, source.version_id) if source else None
    )
    return {"kind": action.kind.value, "key": action.key, "over": action.overwrites, "src": fields}


def _decode(data: dict[str, object]) -> Action:
    src = data["src"]
    source = Source(*src) if isinstance(src, list) else None
    return Action(Kind(str(data["kind"])), str(data["key"]), source, bool(data["over"]))
