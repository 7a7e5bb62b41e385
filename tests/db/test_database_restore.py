"""Restoring the database: the data is replaced, any error fails the step without a change, a
completed restore is never run again, and an interrupted one is redone from the start."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.providers.errors import PermanentError, RetryableError
from rollback_operator.providers.postgres.backups import Backup
from rollback_operator.providers.postgres.database import PostgresDatabase
from tests.db import supabase, world
from tests.db.world import PREFIX, Db

KEY = "uid-1/restore-database/database"


@pytest.mark.parametrize("fmt", ["custom", "custom-gzip", "plain", "plain-gzip"])
async def test_restore_replaces_the_data_with_the_backup(
    database: Db, s3: S3Client, backups: str, fmt: str
) -> None:
    database.seed(["old-1", "old-2"])
    world.put(s3, backups, PREFIX + "b", database.dump(fmt))
    database.seed(["new-1", "new-2", "new-3"])

    result = await world.pg_adapter(database, s3, backups).restore("b", KEY)

    assert database.notes() == ["old-1", "old-2"]
    assert database.markers() == [KEY]
    assert result.external_ids == {"backup": "b"}
    assert f"restored b ({fmt}" in result.message


@pytest.mark.parametrize("fmt", ["custom", "plain"])
async def test_a_restore_error_fails_the_step_and_rolls_everything_back(
    database: supabase.SupabaseDb, s3: S3Client, backups: str, fmt: str
) -> None:
    """The backup's rows reference a user of `auth` deleted since: the foreign key cannot be
    made again, and the drops and rows before it are undone with it."""
    database.seed(["old"])
    world.put(s3, backups, PREFIX + "b", database.dump(fmt))
    database.seed(["new"])
    database.as_app("UPDATE items SET owner = NULL")
    database.sql("DELETE FROM auth.users WHERE email = 'ada@example.com'")

    with pytest.raises(PermanentError, match=r"exit \d+.*violates foreign key constraint"):
        await world.pg_adapter(database, s3, backups).restore("b", KEY)

    assert database.notes() == ["new"]
    assert database.markers() == []


async def test_a_plain_dump_taken_without_clean_restores_too(
    database: Db, s3: S3Client, backups: str
) -> None:
    """The restore drops what it replaces itself: no DROP statements needed in the dump (it
    failed with 'already exists' before)."""
    database.seed(["old"])
    plain = database.dump("plain", clean=False)
    assert b"DROP TABLE" not in plain
    world.put(s3, backups, PREFIX + "b.sql", plain)
    database.seed(["new"])

    await world.pg_adapter(database, s3, backups).restore("b.sql", KEY)

    assert database.notes() == ["old"]


async def test_a_truncated_plain_dump_is_never_committed(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["old"])
    plain = database.dump("plain")
    world.put(s3, backups, PREFIX + "b.sql", plain[: plain.index(b"COPY public.items")])
    database.seed(["new"])

    with pytest.raises(PermanentError, match="looks truncated"):
        await world.pg_adapter(database, s3, backups).restore("b.sql", KEY)

    assert database.notes() == ["new"]


async def test_a_truncated_custom_dump_fails_and_changes_nothing(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed([f"old-{n}" for n in range(2000)])
    dump = database.dump("custom")
    world.put(s3, backups, PREFIX + "b.dump", dump[: len(dump) - 200])
    database.seed(["new"])

    with pytest.raises(PermanentError, match="pg_restore"):
        await world.pg_adapter(database, s3, backups).restore("b.dump", KEY)

    assert database.notes() == ["new"]


async def test_a_completed_restore_is_not_run_again_for_the_same_key(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["old"])
    world.put(s3, backups, PREFIX + "b.dump", database.dump("custom"))
    database.seed(["new"])
    adapter = world.pg_adapter(database, s3, backups)
    await adapter.restore("b.dump", KEY)
    database.sql("INSERT INTO items (note) VALUES ('written-after')")

    again = await adapter.restore("b.dump", KEY)

    assert "already completed" in again.message
    assert database.notes() == ["old", "written-after"]
    await adapter.restore("b.dump", "uid-2/restore-database/database")
    assert database.notes() == ["old"]


@pytest.mark.parametrize("fmt", ["custom", "plain-gzip"])
async def test_the_marker_commits_in_the_restores_own_transaction(
    database: Db, s3: S3Client, backups: str, fmt: str
) -> None:
    """One transaction id wrote the restored rows and the marker: no crash can fall between
    them, so a restore that committed is never run again (and writes made since never lost)."""
    database.seed(["old-1", "old-2"])
    world.put(s3, backups, PREFIX + "b", database.dump(fmt))
    database.seed(["new"])

    await world.pg_adapter(database, s3, backups).restore("b", KEY)

    writers = database.sql("SELECT DISTINCT xmin::text FROM items").split()
    marker = database.sql(f"SELECT xmin::text FROM rollback_operator.restores WHERE key = '{KEY}'")
    assert writers == [marker.strip()]


async def test_a_backup_name_cannot_break_out_of_the_markers_literal(
    database: Db, s3: S3Client, backups: str
) -> None:
    name = "b'); DROP TABLE items; --.dump"
    database.seed(["old"])
    world.put(s3, backups, PREFIX + name, database.dump("custom"))

    await world.pg_adapter(database, s3, backups).restore(name, KEY)

    assert database.notes() == ["old"]
    assert database.sql("SELECT backup FROM rollback_operator.restores").strip() == name


class StallingDatabase(PostgresDatabase):
    """Sends half a chunk of the dump to the restoring tool, then fails or hangs: a crash in
    mid-stream. (The reads of its first bytes that check it before any tool starts succeed.)"""

    hang = False

    def _download(self, backup: Backup, *, window: int | None = None) -> AsyncIterator[bytes]:
        whole = super()._download(backup, window=window)
        return whole if window is not None else self._stall(whole)  # checks read it whole

    async def _stall(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        first = await anext(chunks)
        yield first[: len(first) // 2]
        if self.hang:
            await asyncio.Event().wait()
        raise RetryableError("the connection to S3 was reset")


async def _wait_for_restoring_session(database: Db) -> None:
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        f" WHERE application_name LIKE 'rollback-operator restore%' AND datname = '{database.name}'"
    )
    for _ in range(200):
        if database.sql(query).strip() != "0":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the restoring tool never connected")


@pytest.mark.parametrize("fmt", ["custom", "plain"])
@pytest.mark.parametrize("hang", [False, True], ids=["stream-fails", "cancelled"])
async def test_a_restore_cut_off_mid_stream_changes_nothing_and_is_redone(
    database: Db, s3: S3Client, backups: str, fmt: str, hang: bool
) -> None:
    database.seed([f"old-{n}" for n in range(3000)])
    world.put(s3, backups, PREFIX + "b", database.dump(fmt))
    database.seed(["new"])
    options = world.pg_adapter(database, s3, backups).options
    target = world.pg_target(backups, schemas=supabase.RESTORED)
    stalling = StallingDatabase(target, database.url, s3, options)
    stalling.hang = hang

    if hang:
        task = asyncio.create_task(stalling.restore("b", KEY))
        await _wait_for_restoring_session(database)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        with pytest.raises(RetryableError, match="reset"):
            await stalling.restore("b", KEY)

    assert database.notes() == ["new"]
    assert database.markers() == []
    await world.pg_adapter(database, s3, backups).restore("b", KEY)
    assert len(database.notes()) == 3000


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_an_operator_killed_mid_restore_leaves_psql_nothing_to_commit(
    database: Db, tmp_path: Path, fmt: str
) -> None:
    """SIGKILL the operator while psql copies rows: psql lives on, reads the end of its input,
    and must roll back (it committed what it had read when it ran the script as
    `--single-transaction`, since that wraps whatever arrives in BEGIN ... COMMIT)."""
    database.seed(["old"])
    database.sql("INSERT INTO items (note) SELECT 'old-' || n FROM generate_series(1, 200000) n")
    dump = tmp_path / "b"
    dump.write_bytes(database.dump(fmt))
    database.seed(["new"])
    command = [sys.executable, "-m", "tests.db.dying_restore", database.url, str(dump), KEY]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait(lambda: _copying(database), child, "psql never started copying rows")
    finally:
        child.kill()  # the operator alone, as the kernel's OOM killer would: psql lives on
        child.wait()
    _wait(lambda: not _connected(database), None, "the orphaned psql never ended")

    assert database.notes() == ["new"]
    assert database.markers() == []


def _copying(database: Db) -> bool:
    active = f"datname = '{database.name}' AND state = 'active' AND query LIKE 'COPY %'"
    return database.sql(f"SELECT count(*) FROM pg_stat_activity WHERE {active}").strip() != "0"


def _connected(database: Db) -> bool:
    mine = f"datname = '{database.name}' AND pid <> pg_backend_pid()"
    return database.sql(f"SELECT count(*) FROM pg_stat_activity WHERE {mine}").strip() != "0"


def _wait(ready: Callable[[], bool], child: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        if child is not None and child.poll() is not None:
            _, errors = child.communicate()
            raise AssertionError(f"the restore ended early: {errors.decode()[-2000:]}")
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
