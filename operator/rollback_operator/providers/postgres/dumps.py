"""What a database backup object is, judged from its bytes, and the streaming filters for it.

A backup is restored by the tool its format needs, so the format is read from the first bytes
(never trusted from the name): `PGDMP` is pg_dump's custom archive, gzip magic is a compressed
plain-SQL (or custom) dump, readable text is plain SQL, and anything else is refused before the
database is touched. The filters decompress and check a dump chunk by chunk, so a restore never
holds a dump in memory and a truncated dump is noticed before the tool commits anything.
"""

from __future__ import annotations

import codecs
import functools
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum

from rollback_operator.providers.errors import PermanentError

HEADER_BYTES = 64 * 1024
# SQL text starts with a comment, a psql meta-command (pg_dump writes `\restrict`) or a
# statement; an HTML error page, a JSON body or a log line does not.
_SQL_START = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:--|/\*|\\|(?i:set|create|begin|start|select|insert|drop|alter"
    rb"|copy|comment|grant|revoke|do|truncate|update|delete|with|reset|lock)\b)"
)
CUSTOM_MAGIC = b"PGDMP"
GZIP_MAGIC = b"\x1f\x8b"
TRAILER = b"dump complete"  # pg_dump and pg_dumpall end plain dumps with "... dump complete"
_TRAILER_WINDOW = 4096
_OUT_LIMIT = 4 << 20  # at most this much decompressed output per step: memory stays flat


class DumpFormat(StrEnum):
    """How a backup is stored, and so which tool restores it."""

    CUSTOM = "custom"
    CUSTOM_GZIP = "custom-gzip"
    PLAIN = "plain"
    PLAIN_GZIP = "plain-gzip"

    @property
    def gzipped(self) -> bool:
        """Whether the stream must be decompressed before the tool reads it."""
        return self in (DumpFormat.CUSTOM_GZIP, DumpFormat.PLAIN_GZIP)

    @property
    def archive(self) -> bool:
        """Whether pg_restore (not psql) reads it."""
        return self in (DumpFormat.CUSTOM, DumpFormat.CUSTOM_GZIP)


class BadDump(PermanentError):
    """The object is not a dump we can restore; nothing was changed."""


def detect(header: bytes, name: str) -> DumpFormat:
    """The format of a backup from its first bytes; BadDump when it is none we restore."""
    if not header:
        raise BadDump(f"backup {name} is empty")
    if header.startswith(CUSTOM_MAGIC):
        _check_custom_header(header, name)
        return DumpFormat.CUSTOM
    if header.startswith(GZIP_MAGIC):
        inner = _gunzip_head(header, name)
        if inner.startswith(CUSTOM_MAGIC):
            return DumpFormat.CUSTOM_GZIP
        _check_text(inner, name, "its gzip content")
        return DumpFormat.PLAIN_GZIP
    if header[257:262] == b"ustar":
        raise BadDump(f"backup {name} is a tar-format dump; take backups with pg_dump -Fc")
    _check_text(header, name, "it")
    return DumpFormat.PLAIN


def _check_custom_header(header: bytes, name: str) -> None:
    # PGDMP, version major/minor/rev, int size, offset size, format (1 = custom)
    if len(header) < 11:
        raise BadDump(f"backup {name} has a truncated pg_dump header")
    major, int_size, off_size, archive = header[5], header[8], header[9], header[10]
    if major != 1 or int_size not in (4, 8) or off_size not in (4, 8) or archive != 1:
        raise BadDump(f"backup {name} has a corrupt pg_dump custom-format header")


def _gunzip_head(header: bytes, name: str) -> bytes:
    try:
        return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(header, HEADER_BYTES)
    except zlib.error:
        raise BadDump(f"backup {name} starts like gzip but is not valid gzip") from None


def _check_text(data: bytes, name: str, what: str) -> None:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data[:HEADER_BYTES], final=False)
    except UnicodeDecodeError:
        valid = False
    else:
        valid = b"\x00" not in data[:HEADER_BYTES]
    if not valid or not _SQL_START.match(data[:HEADER_BYTES]):
        raise BadDump(
            f"backup {name} is not a PostgreSQL dump: {what} is neither a pg_dump archive "
            "(PGDMP), gzip, nor SQL text"
        )


Chunks = AsyncIterator[bytes]
Offload = Callable[[Callable[[], bytes]], Awaitable[bytes]]


async def close_stream(chunks: Chunks) -> None:
    """Close a chunk stream early (and so the download under it), when it can be closed."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


async def prepend(first: bytes, rest: Chunks) -> Chunks:
    """`first`, then the chunks of `rest`."""
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await close_stream(rest)


async def chain(*streams: Chunks) -> Chunks:
    """The chunks of each stream in turn; all of them closed at the end, however it ends."""
    try:
        for stream in streams:
            async for chunk in stream:
                yield chunk
    finally:
        for stream in streams:
            await close_stream(stream)


async def once(chunk: bytes) -> Chunks:
    """A stream of one chunk."""
    yield chunk


async def gunzip(chunks: Chunks, name: str, offload: Offload) -> Chunks:
    """Decompress a gzip stream (several members allowed) chunk by chunk, off the loop."""
    try:
        async for out in _gunzip(chunks, name, offload):
            yield out
    finally:
        await close_stream(chunks)


async def _gunzip(chunks: Chunks, name: str, offload: Offload) -> Chunks:
    inflater, fed = _new_member(), False
    async for chunk in chunks:
        pending, full = chunk, False
        while pending or full:  # `full`: zlib may hold more output for this input
            out = await offload(functools.partial(_inflate, inflater, pending, name))
            fed, full = True, len(out) == _OUT_LIMIT
            if out:
                yield out
            pending = inflater.unconsumed_tail
            if inflater.eof:  # a member ended: what follows starts the next one
                pending = (inflater.unused_data + pending).strip(b"\0")  # tolerate padding
                inflater, fed, full = _new_member(), False, False
    if fed and not inflater.eof:
        raise BadDump(f"backup {name} is truncated: its gzip stream ends early")


def _new_member() -> zlib._Decompress:
    return zlib.decompressobj(zlib.MAX_WBITS | 16)


def _inflate(inflater: zlib._Decompress, data: bytes, name: str) -> bytes:
    try:
        return inflater.decompress(data, _OUT_LIMIT)
    except zlib.error:
        raise BadDump(f"backup {name} has corrupt gzip data") from None


async def require_trailer(chunks: Chunks, name: str) -> Chunks:
    """Pass a plain dump through, failing at its end unless pg_dump's last lines are there.

    psql commits whatever it read when its input ends, so a truncated plain dump must be
    noticed before the end of input reaches it.
    """
    tail = b""
    try:
        async for chunk in chunks:
            tail = (tail + chunk[-_TRAILER_WINDOW:])[-_TRAILER_WINDOW:]
            yield chunk
    finally:
        await close_stream(chunks)
    if TRAILER not in tail:
        raise BadDump(
            f"backup {name} does not end with pg_dump's 'dump complete' line: it looks "
            "truncated, so it was not applied"
        )


# pg_restore --single-transaction ends its script with COMMIT, then only blank lines, comments
# ("dump complete") and, from PostgreSQL 17.6 / 16.10 / 15.14, the `\unrestrict` line.
_CLOSING_COMMIT = re.compile(rb"(?:^|\n)(COMMIT;\n)(?:\s|--[^\n]*\n|\\unrestrict [^\n]*\n)*\Z")


async def open_ended(chunks: Chunks, name: str) -> Chunks:
    """pg_restore's single-transaction script without its closing COMMIT, so that statements
    after it still run in the transaction (and the restore commits once, after them); fails
    when the script does not end with that COMMIT."""
    held = b""
    try:
        async for chunk in chunks:
            held += chunk
            if len(held) > _TRAILER_WINDOW:
                yield held[:-_TRAILER_WINDOW]
                held = held[-_TRAILER_WINDOW:]
    finally:
        await close_stream(chunks)
    closing = _CLOSING_COMMIT.search(held)
    if closing is None:
        raise BadDump(f"pg_restore's script of {name} does not end with its COMMIT: not applied")
    yield held[: closing.start(1)] + held[closing.end(1) :]
