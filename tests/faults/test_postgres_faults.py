"""Fault matrix, adapter level, for PostgreSQL: a real server, a real dump in S3, real tools.

Claims: refused credentials are an UnauthorizedError and a closed port a RetryableError for
every operation; a connection terminated mid-restore or mid-dump (pg_terminate_backend from a
second session) is a RetryableError and the database is left as it was. HTTP-only faults
(429, 500) do not exist here and are recorded as N/A with the reason. The adapter has no inner
retry: a transient fault is retried by the step runner (see test_rollback_faults.py).

The timeout column: an idle transaction holding a lock would block pg_restore and pg_dump for as
long as it lives (a statement_timeout or lock_timeout set on the database does not help, since
dumps and pg_dump set both to 0). pg_dump gets --lock-wait-timeout and the restore a watchdog
(providers/pg_locks.py): both give up with a RetryableError naming the lock, nothing changed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.providers import errors
from sandbox.services import free_port
from sandbox.services.postgres import PostgresServer
from tests.db import supabase, world
from tests.faults.matrix import Outcome, Recorder, error_class

KEY = "uid-pg/restore-database/database"
NOT_HTTP = {
    "429": "N/A: PostgreSQL has no rate-limit answer (too many connections is a refused "
           "connection, like unreachable)",
    "500": "N/A: PostgreSQL has no 5xx; server failures arrive as SQL errors (timeout) or "
           "closed connections (dropped)",
}  # fmt: skip
WAITING = (
    "an idle transaction holds an {} lock: still waiting after 8 s, although the database "
    "sets statement_timeout and lock_timeout to 300ms (pg_dump and every dump script reset "
    "both to 0)"
)
HANG = (
    "no lock_timeout: pg_restore --clean (DROP TABLE) and pg_dump wait for as long as another "
    "session holds a lock on a table, so the step never ends and the Rollback stays Running"
)


@pytest.fixture
def db(pg_server: PostgresServer, s3: S3Client) -> Iterator[tuple[world.Db, str]]:
    """A seeded Supabase-shaped database, reached as the app's role, whose nightly dump (taken
    before `mallory` came) is in a bucket."""
    made = supabase.make(pg_server, f"f_{uuid.uuid4().hex[:10]}")
    bucket = world.make_bucket(s3, versioned=False)
    made.seed(["alice", "bob"])
    world.put(s3, bucket, f"{world.PREFIX}nightly.dump", made.dump("custom"))
    made.seed(["alice", "bob", "mallory"])
    try:
        yield made, bucket
    finally:
        pg_server.psql("postgres", f"DROP DATABASE IF EXISTS {made.name} WITH (FORCE)")


def operations(
    db: world.Db, s3: S3Client, bucket: str, url: str, **options: Any
) -> dict[str, Callable[[], Awaitable[Any]]]:
    adapter = world.pg_adapter(db, s3, bucket, url=url, connect_timeout=2, **options)
    return {
        "plan": lambda: adapter.plan(None),
        "safety backup": lambda: adapter.safety_backup(f"uid-{uuid.uuid4().hex[:6]}/safety/db"),
        "restore": lambda: adapter.restore("nightly.dump", KEY),
    }


@asynccontextmanager
async def holding(db: world.Db, lock: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A second session holding `lock` on `items` in an open transaction (an idle app)."""
    conn = await psycopg.AsyncConnection.connect(db.url)
    try:
        await conn.execute(f"LOCK TABLE items IN {lock} MODE")
        yield conn
    finally:
        await conn.rollback()
        await conn.close()


async def terminate_waiting(db: world.Db) -> int:
    """pg_terminate_backend on the operator's session once it waits for a lock; its pid."""
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as admin:
        for _ in range(400):
            cursor = await admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND "
                "application_name LIKE 'rollback-operator%%' AND wait_event_type = 'Lock'",
                (db.name,),
            )
            row = await cursor.fetchone()
            if row is not None:
                await admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                return int(row[0])
            await asyncio.sleep(0.025)
    raise AssertionError("the operator's session never waited for the lock")


def record(recorder: Recorder, operation: str, fault: str, error: BaseException) -> None:
    recorder.add(Outcome("adapter", "postgres", operation, fault, "persistent",
                         error_class(error), str(error)))  # fmt: skip


def assert_clean(error: BaseException, db: world.Db, logs: str) -> None:
    assert str(error).startswith("postgres: ") or str(error).startswith("s3: "), str(error)
    for secret in (db.server.password, world.password_of(db)):
        assert secret not in f"{error} {error.args!r} {logs}"


@pytest.mark.parametrize("fault", NOT_HTTP)
@pytest.mark.parametrize("operation", ["plan", "safety backup", "restore"])
def test_http_only_faults_do_not_apply(operation: str, fault: str, recorder: Recorder) -> None:
    recorder.add(Outcome("adapter", "postgres", operation, fault, "persistent", "N/A",
                         NOT_HTTP[fault]))  # fmt: skip


@pytest.mark.parametrize("operation", ["plan", "safety backup", "restore"])
async def test_refused_credentials_are_unauthorized_for_every_operation(
    db: tuple[world.Db, str], s3: S3Client, operation: str, recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    made, bucket = db
    url = made.url.replace(world.password_of(made), "wrong-" + world.password_of(made))

    with pytest.raises(errors.ProviderError) as raised:
        await operations(made, s3, bucket, url)[operation]()

    record(recorder, operation, "bad-credentials", raised.value)
    assert type(raised.value) is errors.UnauthorizedError, raised.value
    assert "refused the credentials" in str(raised.value)
    assert_clean(raised.value, made, caplog.text)
    assert made.notes() == ["alice", "bob", "mallory"]


@pytest.mark.parametrize("operation", ["plan", "safety backup", "restore"])
async def test_a_closed_port_is_retryable_for_every_operation(
    db: tuple[world.Db, str], s3: S3Client, operation: str, recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    made, bucket = db
    url = made.url.replace(f":{made.server.port}/", f":{free_port()}/")

    with pytest.raises(errors.ProviderError) as raised:
        await operations(made, s3, bucket, url)[operation]()

    record(recorder, operation, "unreachable", raised.value)
    assert type(raised.value) is errors.RetryableError, raised.value
    assert "cannot reach the database" in str(raised.value)
    assert_clean(raised.value, made, caplog.text)


@pytest.mark.parametrize(
    ("operation", "lock"), [("restore", "ACCESS SHARE"), ("safety backup", "ACCESS EXCLUSIVE")]
)
async def test_a_session_terminated_mid_operation_is_retryable_and_changes_nothing(
    db: tuple[world.Db, str], s3: S3Client, operation: str, lock: str, recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    made, bucket = db
    async with holding(made, lock):
        running = asyncio.ensure_future(operations(made, s3, bucket, made.url)[operation]())
        await terminate_waiting(made)
        with pytest.raises(errors.ProviderError) as raised:
            await asyncio.wait_for(running, 30)

    record(recorder, operation, "dropped", raised.value)
    assert type(raised.value) is errors.RetryableError, raised.value
    assert "terminating connection" in str(raised.value) or "closed" in str(raised.value)
    assert_clean(raised.value, made, caplog.text)
    assert made.notes() == ["alice", "bob", "mallory"]
    assert made.markers() == []


@pytest.mark.parametrize(
    ("operation", "lock"), [("restore", "ACCESS SHARE"), ("safety backup", "ACCESS EXCLUSIVE")]
)
async def test_a_lock_held_by_an_idle_transaction_fails_the_operation_instead_of_hanging(
    db: tuple[world.Db, str], s3: S3Client, operation: str, lock: str, recorder: Recorder
) -> None:
    made, bucket = db
    limits = "SET statement_timeout = '300ms'; ALTER DATABASE {0} SET lock_timeout = '300ms'"
    made.server.psql("postgres", f"ALTER DATABASE {made.name} " + limits.format(made.name))
    async with holding(made, lock):
        running = operations(made, s3, bucket, made.url, lock_wait_limit=1.0)[operation]()
        try:
            await asyncio.wait_for(running, 20)  # far beyond the 1 s the adapter accepts
        except TimeoutError:
            recorder.add(Outcome("adapter", "postgres", operation, "timeout", "persistent",
                                 "hangs", WAITING.format(lock), HANG))  # fmt: skip
            raise
        except errors.ProviderError as error:
            record(recorder, operation, "timeout", error)
            failed: errors.ProviderError | None = error
        else:
            failed = None
    assert failed is not None, f"{operation} succeeded while {lock} was held"
    assert type(failed) is errors.RetryableError, failed
    assert "timeout" in str(failed) or "lock" in str(failed)
    assert made.notes() == ["alice", "bob", "mallory"]
    assert made.markers() == []
