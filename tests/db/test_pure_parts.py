"""The pure parts behind the adapters: key layout, dump formats and filters, the storage diff,
tool outcomes and S3 error mapping. No server needed."""

from __future__ import annotations

import gzip
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from rollback_operator.providers.errors import (
    NotFoundError,
    PermanentError,
    RetryableError,
    UnauthorizedError,
)
from rollback_operator.providers.objectstore import layout, s3api
from rollback_operator.providers.postgres import dumps, tools
from rollback_operator.providers.postgres.dumps import DumpFormat
from rollback_operator.providers.storage import diff, writes

T = datetime(2024, 1, 1, 12, tzinfo=UTC)


# ----- key layout -----


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("backup_20240101.sql.gz", (datetime(2024, 1, 1, tzinfo=UTC), False)),
        ("db-2024-01-02T03-04-05Z.dump", (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), True)),
        (
            "2023/12/nightly-20231231_235959.dump",
            (datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC), True),
        ),
        ("nightly.dump", None),
        ("build-20241399.dump", None),
    ],
)
def test_the_time_in_a_backup_name_is_read(name: str, expected: object) -> None:
    assert layout.name_time(name) == expected


def test_a_date_only_name_takes_the_upload_time_of_that_day_else_midnight() -> None:
    same_day = datetime(2024, 1, 1, 3, 30, tzinfo=UTC)
    assert layout.taken_at("b_20240101.dump", same_day) == same_day
    later = datetime(2024, 2, 1, tzinfo=UTC)
    assert layout.taken_at("b_20240101.dump", later) == datetime(2024, 1, 1, tzinfo=UTC)
    assert layout.taken_at("nightly.dump", later) == later


def test_safety_dumps_are_named_by_rollback_and_time_and_never_the_newest() -> None:
    key = layout.safety_key("database/", layout.rollback_of("1f2e/safety-backup/database"), T)
    assert key == "database/safety/1f2e-20240101T120000Z.dump"
    assert layout.is_safety_dump(layout.backup_name("database/", key))
    assert key.startswith(layout.safety_prefix("database/", "1f2e"))


FIRST_UID, SECOND_UID = (
    "f1e2d3c4-0000-4000-8000-000000000001",
    "0a1b2c3d-0000-4000-8000-000000000002",
)


def test_a_report_key_is_under_the_rollbacks_name_by_creation_time_and_uid() -> None:
    key = layout.report_key("prod", "rollback-prod", T, FIRST_UID)
    assert key == "reports/prod/rollback-prod/20240101T120000Z-f1e2d3c4.md"
    assert key.startswith(layout.report_folder("prod", "rollback-prod"))


def test_a_name_applied_again_gets_a_report_key_of_its_own_and_they_sort_by_time() -> None:
    """Deleted and applied again under one name: each run keeps its own report, and listing the
    name's folder shows them oldest first (the later run's uid sorts first on its own)."""
    first = layout.report_key("prod", "rollback-prod", T, FIRST_UID)
    again = layout.report_key("prod", "rollback-prod", T + timedelta(minutes=5), SECOND_UID)
    same_second = layout.report_key("prod", "rollback-prod", T, SECOND_UID)
    assert len({first, again, same_second}) == 3
    assert sorted([again, first]) == [first, again]


def test_a_names_report_folder_holds_no_report_of_a_longer_name() -> None:
    longer = layout.report_key("prod", "rb-1", T, FIRST_UID)
    assert not longer.startswith(layout.report_folder("prod", "rb"))
    assert not longer.startswith(layout.report_folder("pro", "d/rb-1"))


@pytest.mark.parametrize("name", ["rollback-prod", "nightly.dump", "backup_20240101.sql.gz"])
@pytest.mark.parametrize("prefix", ["", "database/"])
def test_a_report_is_never_a_backup_whatever_the_rollback_is_named(name: str, prefix: str) -> None:
    assert not layout.is_backup(prefix, layout.report_key("prod", name, T, FIRST_UID))
    assert not layout.is_backup(prefix, layout.LOG_KEY)
    assert layout.is_backup(prefix, f"{prefix}{name}.dump")


def test_the_dated_folder_is_the_newest_on_or_before_the_day() -> None:
    days = [date(2024, 1, 1), date(2024, 1, 5), date(2024, 1, 3)]
    assert layout.folder_for(days, datetime(2024, 1, 4, tzinfo=UTC)) == date(2024, 1, 3)
    assert layout.folder_for(days, datetime(2024, 1, 5, 1, tzinfo=UTC)) == date(2024, 1, 5)
    assert layout.folder_for(days, datetime(2023, 12, 31, tzinfo=UTC)) is None
    assert layout.folder_day("s/", "s/20240105/") == date(2024, 1, 5)
    assert layout.folder_day("s/", "s/2024-01-05/") is None


# ----- dump formats and stream filters -----


@pytest.mark.parametrize(
    ("header", "fmt"),
    [
        (b"PGDMP\x01\x0e\x00\x04\x08\x01rest", DumpFormat.CUSTOM),
        (gzip.compress(b"PGDMP\x01\x0e\x00\x04\x08\x01"), DumpFormat.CUSTOM_GZIP),
        (gzip.compress(b"--\n-- PostgreSQL database dump\n"), DumpFormat.PLAIN_GZIP),
        (b"--\n-- PostgreSQL database dump\n", DumpFormat.PLAIN),
    ],
)
def test_the_format_is_read_from_the_first_bytes(header: bytes, fmt: DumpFormat) -> None:
    assert dumps.detect(header, "b") is fmt


def test_a_tar_dump_is_refused_by_name() -> None:
    tar = b"x" * 257 + b"ustar" + b"\x00" * 100
    with pytest.raises(dumps.BadDump, match="tar-format"):
        dumps.detect(tar, "b")


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def _from(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _inline(work: Callable[[], bytes]) -> bytes:
    return work()


async def test_gunzip_streams_several_members_split_anywhere() -> None:
    data = gzip.compress(b"first ") + gzip.compress(b"second") + b"\x00\x00"
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert await _collect(dumps.gunzip(_from(*pieces), "b", _inline)) == b"first second"


async def test_gunzip_keeps_its_output_steps_bounded() -> None:
    big = b"\x00" * (20 << 20)  # compresses to ~20 KiB
    sizes = [len(c) async for c in dumps.gunzip(_from(gzip.compress(big)), "b", _inline)]
    assert sum(sizes) == len(big)
    assert max(sizes) <= 4 << 20


async def test_a_truncated_gzip_stream_fails_at_its_end() -> None:
    data = gzip.compress(os.urandom(5000))
    with pytest.raises(dumps.BadDump, match="truncated"):
        await _collect(dumps.gunzip(_from(data[:-20]), "b", _inline))


async def test_a_plain_dump_must_end_with_pg_dumps_last_line() -> None:
    whole = b"CREATE TABLE t();\n-- PostgreSQL database dump complete\n\\unrestrict x\n"
    assert await _collect(dumps.require_trailer(_from(whole[:10], whole[10:]), "b")) == whole
    with pytest.raises(dumps.BadDump, match="truncated"):
        await _collect(dumps.require_trailer(_from(b"CREATE TABLE t();\n"), "b"))


async def test_pg_restores_script_goes_on_without_its_closing_commit_or_is_not_applied() -> None:
    """So statements after it (the carried triggers) still run in the restore's transaction."""
    body = b"BEGIN;\n" + b"INSERT INTO t VALUES ('COMMIT;');\n" * 400
    tail = b"\n\nCOMMIT;\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k\n\n"
    whole = body + tail
    pieces = [whole[i : i + 999] for i in range(0, len(whole), 999)]
    out = await _collect(dumps.open_ended(_from(*pieces), "b"))
    assert out == whole.replace(b"\nCOMMIT;\n\n--", b"\n\n--")
    assert out.count(b"COMMIT;") == 400  # the quoted ones are left alone
    with pytest.raises(dumps.BadDump, match="does not end with its COMMIT"):
        await _collect(dumps.open_ended(_from(body), "b"))


# ----- the storage diff -----


def v(
    key: str, when: int, *, deleted: bool = False, etag: str = "", latest: bool = False
) -> diff.Version:
    return diff.Version(key, f"{key}-{when}", T + timedelta(hours=when), latest, deleted, etag, 1)


@pytest.mark.parametrize(
    ("history", "kind"),
    [
        ([v("k", 2, etag="b", latest=True), v("k", -1, etag="a")], diff.Kind.RESTORE),
        ([v("k", 2, etag="a", latest=True), v("k", -1, etag="a")], diff.Kind.UNCHANGED),
        ([v("k", 2, etag="b", latest=True)], diff.Kind.HIDE),
        ([v("k", 2, deleted=True, latest=True), v("k", -1, etag="a")], diff.Kind.RESTORE),
        (
            [v("k", 2, etag="b", latest=True), v("k", -1, deleted=True), v("k", -2, etag="a")],
            diff.Kind.HIDE,
        ),
        ([v("k", 2, deleted=True, latest=True), v("k", 1, etag="b")], diff.Kind.UNCHANGED),
        ([v("k", 2, etag='"x-2"', latest=True), v("k", -1, etag='"y-3"')], diff.Kind.CHECK),
    ],
    ids=["edited", "same-content", "born", "gone", "reborn", "born-and-gone", "multipart"],
)
def test_each_key_gets_the_action_its_history_needs(
    history: list[diff.Version], kind: diff.Kind
) -> None:
    assert diff.decide(history, T, "bucket").kind is kind


def test_a_restored_key_is_copied_from_the_version_current_at_the_time() -> None:
    history = [v("k", 3, etag="c", latest=True), v("k", 0, etag="b"), v("k", -1, etag="a")]
    action = diff.decide(history, T, "bucket")
    assert action.source is not None
    assert action.source.version_id == "k-0"


def test_histories_span_pages_and_come_out_one_key_at_a_time() -> None:
    histories = diff.Histories()
    first = histories.feed([v("a", 1), v("b", 2)])
    second = histories.feed([v("b", 1), v("c", 1)])
    last = histories.finish()
    assert [[e.version_id for e in h] for h in first + second + last] == [
        ["a-1"],
        ["b-2", "b-1"],
        ["c-1"],
    ]
    assert histories.oldest == T + timedelta(hours=1)


def test_a_page_merges_versions_and_delete_markers_newest_first() -> None:
    page = {
        "Versions": [{"Key": "k", "VersionId": "1", "LastModified": T, "ETag": "a", "Size": 1}],
        "DeleteMarkers": [
            {"Key": "k", "VersionId": "2", "LastModified": T + timedelta(1), "IsLatest": True}
        ],
    }
    assert [e.version_id for e in diff.versions_of(page)] == ["2", "1"]


def test_copies_in_parts_cover_the_object_within_the_part_limit() -> None:
    limits = writes.CopyLimits(multipart_threshold=10, part_size=4)
    assert writes.part_ranges(10, limits) == [(0, 3), (4, 7), (8, 9)]
    huge = writes.part_ranges(50_000 * 1024**2, writes.CopyLimits(part_size=1024**2))
    assert len(huge) <= writes.MAX_PARTS
    assert huge[-1][1] == 50_000 * 1024**2 - 1


# ----- tool outcomes and error mapping -----


def test_an_error_line_fails_a_run_even_with_exit_code_zero() -> None:
    outcome = tools.Outcome("psql", 0, "psql:<stdin>:9: ERROR:  relation exists\n")
    assert outcome.failed
    assert isinstance(outcome.as_error("restoring b"), PermanentError)
    assert not tools.Outcome("psql", 0, "WARNING: about error_codes table\n").failed


def test_a_lost_connection_during_a_run_is_retryable() -> None:
    outcome = tools.Outcome("pg_restore", 1, "pg_restore: error: server closed the connection\n")
    assert isinstance(outcome.as_error("restoring b"), RetryableError)


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_client_error("NoSuchKey", 404), NotFoundError),
        (_client_error("AccessDenied", 403), UnauthorizedError),
        (_client_error("SlowDown", 503), RetryableError),
        (_client_error("InvalidRequest", 400), PermanentError),
        (EndpointConnectionError(endpoint_url="http://x"), RetryableError),
    ],
)
def test_s3_errors_map_to_our_classes(error: Exception, kind: type[Exception]) -> None:
    mapped = s3api.translate(error, "reading b")
    assert type(mapped) is kind
    assert str(mapped).startswith("s3: reading b")


def test_credentials_never_show_in_a_repr() -> None:
    assert "hunter2" not in repr(s3api.Credentials("id", "hunter2"))
