"""Which schemas a backup holds, and a backup's SQL narrowed to the schemas being restored.

A restore replaces whole schemas (`scope`), so it must know which ones the backup holds and
must apply nothing else: not a `CREATE SCHEMA`, an extension or a role's default privileges
(those belong to the database, not to a schema's contents), and never an object of a schema
left out. A custom archive says so in its table of contents (`pg_restore --list`), from which
the restore's `--use-list` is written. A plain dump says so in the comment pg_dump writes above
each object (`-- Name: x; Type: TABLE; Schema: public; Owner: app`); `narrowed` passes on the
objects of the chosen schemas and the session settings at the top, and leaves out the rest,
including the DROP statements of `pg_dump --clean` (the restore drops what it replaces itself).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass

from rollback_operator.providers.postgres import dumps

# TOC descriptions of more than one word (pg_dump's ArchiveEntry `.description`), longest first
# so "TABLE DATA" wins over "TABLE"; every other description is one word.
_MULTI_WORD_KINDS = (
    "ACCESS METHOD", "BLOB METADATA", "CHECK CONSTRAINT", "DATABASE PROPERTIES",
    "DEFAULT ACL", "EVENT TRIGGER", "FK CONSTRAINT", "FOREIGN DATA WRAPPER",
    "FOREIGN TABLE", "INDEX ATTACH", "LARGE OBJECT", "MATERIALIZED VIEW",
    "MATERIALIZED VIEW DATA", "OPERATOR CLASS", "OPERATOR FAMILY", "PROCEDURAL LANGUAGE",
    "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "ROW SECURITY", "SECURITY LABEL",
    "SEQUENCE OWNED BY", "SEQUENCE SET", "SHELL TYPE", "SUBSCRIPTION TABLE", "TABLE ATTACH",
    "TABLE DATA", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY",
    "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "USER MAPPING",
)  # fmt: skip
_MULTI_WORD = sorted(_MULTI_WORD_KINDS, key=len, reverse=True)
# Entries with a schema that are still no part of it: a role's default privileges in it.
_NOT_CONTENT = frozenset({"DEFAULT ACL"})
_LIST_LINE = re.compile(r"^(\d+); \d+ \d+ (.*)$")
_HEADER = re.compile(
    r"^-- (Data for )?Name: (?P<name>.*); Type: (?P<type>.*?); Schema: (?P<schema>.*?); Owner:"
)
_PROLOGUE = re.compile(rb"^(?:SET |SELECT pg_catalog\.set_config\(|\\restrict |--|\s*$)")
_META = re.compile(rb"^\\(?:restrict|unrestrict) ")
_COPY = re.compile(rb"^COPY .* FROM stdin;\n$")
_COPY_END = b"\\.\n"
_LINE_LIMIT = 64 << 20  # a longer line outside COPY data is no pg_dump output


@dataclass(frozen=True)
class Entry:
    """One object in a backup: its archive id (0 in plain dumps), kind, schema and name."""

    dump_id: int
    kind: str
    schema: str | None
    name: str

    def content_of(self, schemas: Collection[str]) -> bool:
        """Whether restoring `schemas` applies this entry."""
        return self.schema is not None and self.schema in schemas and self.kind not in _NOT_CONTENT


def held_schemas(entries: Iterable[Entry], *, skip: str) -> list[str]:
    """The schemas a backup holds (with objects, or created by it), sorted; never `skip`."""
    found = {e.schema for e in entries if e.schema} | {
        e.name for e in entries if e.kind == "SCHEMA" and e.schema is None
    }
    return sorted(found - {skip})


def archive_entries(listing: str) -> list[Entry]:
    """The entries of `pg_restore --list` output."""
    return [entry for line in listing.splitlines() if (entry := _archive_entry(line))]


def _archive_entry(line: str) -> Entry | None:
    match = _LIST_LINE.match(line)
    if match is None:
        return None
    rest = match.group(2)
    kind = next((k for k in _MULTI_WORD if rest.startswith(k + " ")), rest.split(" ", 1)[0])
    schema, _, named = rest[len(kind) + 1 :].partition(" ")
    name = named.rsplit(" ", 1)[0]  # the owner comes last (empty for an extension)
    return Entry(int(match.group(1)), kind, None if schema == "-" else schema, name)


def use_list(entries: Sequence[Entry], schemas: Iterable[str]) -> str:
    """A `pg_restore --use-list` file restoring the entries of `schemas`, in archive order."""
    wanted = set(schemas)
    return "".join(f"{e.dump_id};\n" for e in entries if e.content_of(wanted))


@dataclass(frozen=True)
class Selection:
    """What a restore applies: the schemas it replaces and, for an archive, its entries."""

    schemas: Sequence[str]
    entries: Sequence[Entry]
    list_path: str

    def write_use_list(self) -> str:
        """The pg_restore --use-list file of the schemas' entries; its path."""
        with open(self.list_path, "w", encoding="utf-8") as handle:
            handle.write(use_list(self.entries, self.schemas))
        return self.list_path


def plain_entry(line: str) -> Entry | None:
    """The object a plain dump's header comment line names, if it is one."""
    match = _HEADER.match(line)
    if match is None:
        return None
    schema = match.group("schema")
    return Entry(0, match.group("type"), None if schema == "-" else schema, match.group("name"))


async def plain_headers(chunks: AsyncIterator[bytes]) -> AsyncIterator[Entry]:
    """The objects a plain dump's headers name, up to its first data (pre-data names every
    schema: data, indexes, constraints, policies and grants follow objects made there)."""
    try:
        async for line, in_copy in _lines(chunks):
            if in_copy:
                return
            entry = plain_entry(line.decode("utf-8", "replace"))
            if entry is not None and line.startswith(b"-- Data for "):
                return
            if entry is not None:
                yield entry
    finally:
        await dumps.close_stream(chunks)


async def narrowed(chunks: AsyncIterator[bytes], schemas: Iterable[str]) -> AsyncIterator[bytes]:
    """A plain dump with only the session settings and the objects of `schemas`."""
    wanted, keep, prologue = set(schemas), True, True
    try:
        async for line, in_copy in _lines(chunks):
            if in_copy:
                if keep:
                    yield line
                continue
            entry = plain_entry(line.decode("utf-8", "replace")) if line[:3] == b"-- " else None
            if entry is not None:
                prologue, keep = False, entry.content_of(wanted)
            if _META.match(line) or (keep and (not prologue or _PROLOGUE.match(line))):
                yield line
    finally:
        await dumps.close_stream(chunks)


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes, bool]]:
    """The dump's lines, each with whether it is COPY data (the `\\.` ending it included).

    COPY data is passed on in blocks rather than line by line: it is nearly all of a dump.
    """
    pending, in_copy = b"", False
    async for chunk in chunks:
        pending += chunk
        while pending:
            if in_copy:
                block, in_copy, pending = _copy_block(pending)
                if block:
                    yield block, True
                if in_copy:
                    break  # the rest of the data is in the next chunk
                continue
            end = pending.find(b"\n")
            if end < 0:
                if len(pending) > _LINE_LIMIT:
                    raise dumps.BadDump("a line of the plain dump is over 64 MiB: no pg_dump SQL")
                break
            line, pending = pending[: end + 1], pending[end + 1 :]
            in_copy = bool(_COPY.match(line))
            yield line, False
    if pending:
        yield pending, in_copy


def _copy_block(data: bytes) -> tuple[bytes, bool, bytes]:
    """The COPY data at the start of `data`: (block, still in COPY, the rest after it).

    A data line never starts with an unescaped backslash-dot, so the end marker is a line of
    its own; the last partial line is kept back until its end arrives.
    """
    if data.startswith(_COPY_END):
        return data[:3], False, data[3:]
    end = data.find(b"\n" + _COPY_END)
    if end >= 0:
        return data[: end + 4], False, data[end + 4 :]
    cut = data.rfind(b"\n") + 1
    return data[:cut], True, data[cut:]
