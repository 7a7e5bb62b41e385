"""A restore never waits forever behind another session's lock.

Every dump script and archive starts with `SET lock_timeout = 0`, so a lock_timeout set on the
database (or in PGOPTIONS) is overridden, and an idle transaction of the app holding a lock on a
table blocks `pg_restore --clean` at its DROP for as long as it lives: the step would never end.
The restore's session therefore carries a name of its own (`application_name`), and this
watchdog looks at `pg_stat_activity` while the tool runs. Once that session has waited on a lock
for longer than the limit, it cancels the statement (the single transaction rolls back, nothing
is half-restored) and keeps who blocked it, so the step fails with a reason a person can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psycopg

from rollback_operator.providers.errors import ProviderError
from rollback_operator.providers.postgres import server

WAITING = """
    SELECT pid, wait_event_type = 'Lock' FROM pg_stat_activity
    WHERE application_name = %s AND datname = current_database()
"""
BLOCKERS = """
    SELECT pid, coalesce(nullif(application_name, ''), '?'), coalesce(state, '?'),
           coalesce(extract(epoch FROM now() - xact_start)::int, 0)
    FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(%s)) ORDER BY pid LIMIT 5
"""


@dataclass
class LockWatch:
    """Cancels the session named `application` once it has waited on a lock over `limit` s."""

    dsn: server.Dsn
    application: str
    limit: float = 60.0
    interval: float = 1.0
    blockers: str | None = field(default=None, init=False)  # set when it cancelled

    async def run(self) -> None:
        """Watch until cancelled, or until it cancelled the stuck statement."""
        try:
            conn = await server.connect(self.dsn)
        except ProviderError:
            return  # the tool cannot connect either: its own error tells why
        async with conn:
            since: float | None = None
            while True:
                await asyncio.sleep(self.interval)
                try:
                    row = await (await conn.execute(WAITING, (self.application,))).fetchone()
                    if row is None or not row[1]:
                        since = None
                        continue
                    since = since if since is not None else time.monotonic()
                    if time.monotonic() - since >= self.limit:
                        await self._cancel(conn, int(str(row[0])))
                        return
                except psycopg.Error:
                    return  # the watchdog must never be the reason a restore fails

    async def _cancel(self, conn: psycopg.AsyncConnection[tuple[object, ...]], pid: int) -> None:
        rows = await (await conn.execute(BLOCKERS, (pid,))).fetchall()
        self.blockers = (
            ", ".join(
                f"pid {b} ({app}, {state}, transaction open {age}s)" for b, app, state, age in rows
            )
            or "a session that has since ended"
        )
        await conn.execute("SELECT pg_cancel_backend(%s)", (pid,))

    def reason(self, doing: str) -> str:
        """Why `doing` failed, once the watchdog cancelled it."""
        return (
            f"{doing}: waited over {self.limit:g}s for a table lock held by {self.blockers}; "
            "cancelled, the transaction rolled back and nothing changed (end or commit the "
            "blocking transaction, then the step is retried)"
        )


@contextlib.asynccontextmanager
async def watching(watch: LockWatch) -> AsyncIterator[LockWatch]:
    """Run `watch` for as long as the block runs."""
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
