"""Through a connection pooler (PgBouncer), as Supabase offers one: in session mode the restore,
the safety dump and the lock watchdog work as on a direct connection; in transaction mode the
plan refuses, saying which connection to use, before anything changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.providers.errors import PermanentError, RetryableError
from sandbox.services.pgbouncer import PgBouncer
from tests.db import supabase, world
from tests.db.world import PREFIX

KEY = "uid-p/restore-database/database"


@pytest.fixture(params=["session"])
def pooler(request: pytest.FixtureRequest, database: supabase.SupabaseDb) -> Iterator[PgBouncer]:
    """PgBouncer in front of the test's server, letting the app's role in."""
    bouncer = PgBouncer(database.server.port, {supabase.APP: database.password}, request.param)
    try:
        yield bouncer.start()
    finally:
        bouncer.stop()


def pooled(database: supabase.SupabaseDb, pooler: PgBouncer) -> str:
    return pooler.url_for(supabase.APP, database.name)


async def test_a_restore_through_the_session_pooler_returns_public_to_the_backup(
    database: supabase.SupabaseDb, pooler: PgBouncer, s3: S3Client, backups: str
) -> None:
    database.seed(["kept"])
    before = database.shape()
    world.put(s3, backups, PREFIX + "b.dump", database.dump("custom"))
    database.as_app("INSERT INTO items (note) VALUES ('new'); CREATE VIEW v AS SELECT * FROM items")
    adapter = world.pg_adapter(database, s3, backups, url=pooled(database, pooler))

    plan = await adapter.plan("b.dump")
    await adapter.restore(plan.backup, KEY)

    assert database.shape() == before
    assert database.notes() == ["kept"]
    assert database.markers() == [KEY]


async def test_a_safety_dump_through_the_session_pooler_restores_through_it(
    database: supabase.SupabaseDb, pooler: PgBouncer, s3: S3Client, backups: str
) -> None:
    database.seed(["today"])
    today = database.shape()
    world.put(s3, backups, PREFIX + "b.dump", database.dump("custom"))
    adapter = world.pg_adapter(database, s3, backups, url=pooled(database, pooler))

    safety = await adapter.safety_backup("uid-p/safety-backup/database")
    database.as_app("TRUNCATE items; CREATE TABLE later (x int)")
    await adapter.restore(safety.external_ids["safetyBackup"], KEY)

    assert database.shape() == today
    assert database.notes() == ["today"]


@asynccontextmanager
async def holding(database: supabase.SupabaseDb, lock: str) -> AsyncIterator[None]:
    """An idle transaction of the app, straight to the server, holding `lock` on items."""
    conn = await psycopg.AsyncConnection.connect(database.url)
    try:
        await conn.execute(f"LOCK TABLE items IN {lock} MODE")
        yield
    finally:
        await conn.rollback()
        await conn.close()


@pytest.mark.parametrize(
    ("operation", "lock"), [("restore", "ACCESS SHARE"), ("safety backup", "ACCESS EXCLUSIVE")]
)
async def test_a_held_lock_stops_the_operation_through_the_session_pooler_unchanged(
    database: supabase.SupabaseDb, pooler: PgBouncer, s3: S3Client, backups: str,
    operation: str, lock: str,
) -> None:  # fmt: skip
    database.seed(["kept"])
    world.put(s3, backups, PREFIX + "b.dump", database.dump("custom"))
    database.seed(["new"])
    adapter = world.pg_adapter(
        database, s3, backups, url=pooled(database, pooler), lock_wait_limit=1.0
    )
    run: dict[str, Any] = {
        "restore": lambda: adapter.restore("b.dump", KEY),
        "safety backup": lambda: adapter.safety_backup("uid-p/safety-backup/database"),
    }

    async with holding(database, lock):
        with pytest.raises(RetryableError, match=r"lock|timeout") as caught:
            await asyncio.wait_for(run[operation](), 20)

    assert database.password not in str(caught.value)
    assert database.notes() == ["new"]
    assert database.markers() == []


@pytest.mark.parametrize("pooler", ["transaction"], indirect=True)
async def test_a_transaction_mode_pooler_is_refused_at_plan_naming_what_to_use_instead(
    database: supabase.SupabaseDb, pooler: PgBouncer, s3: S3Client, backups: str
) -> None:
    database.seed(["kept"])
    world.put(s3, backups, PREFIX + "b.dump", database.dump("custom"))
    database.seed(["new"])
    adapter = world.pg_adapter(database, s3, backups, url=pooled(database, pooler))

    with pytest.raises(PermanentError, match="transaction mode") as caught:
        await adapter.plan("b.dump")

    assert "use the direct connection or the pooler's session mode" in str(caught.value)
    assert database.password not in str(caught.value)
    assert database.notes() == ["new"]
