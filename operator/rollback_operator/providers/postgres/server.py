"""Talking to the PostgreSQL server: the DATABASE_URL, tool credentials, checks and the marker.

The URL comes from a Secret and holds the password, so it never reaches a command line, an
environment variable, a log or an error: the tools get a private 0600 service file and passfile
(`-d service=rollback`), and every message is built from host, port and database name only.

A completed restore leaves a row in `rollback_operator.restores` keyed by the step's idempotency
key. Dumps made by the operator exclude that schema and restores skip it, so `--clean` never
drops the record of what was done.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import conninfo

from rollback_operator.providers.errors import (
    NotFoundError,
    PermanentError,
    ProviderError,
    RetryableError,
    UnauthorizedError,
)

PROVIDER = "postgres"
SCHEMA = "rollback_operator"
SERVICE = "rollback"
APPLICATION = "rollback-operator"
_AUTH = re.compile(r"authentication failed|no pg_hba\.conf entry|role \".*\" does not exist")
_NO_DATABASE = re.compile(r"database \".*\" does not exist")
_MARKER_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.restores (key text PRIMARY KEY, backup text NOT NULL,"
    " finished_at timestamptz NOT NULL DEFAULT now())",
)


@dataclass(frozen=True)
class Dsn:
    """A parsed DATABASE_URL; its repr and `describe` never show the password."""

    url: str = field(repr=False)
    params: Mapping[str, str] = field(repr=False)
    connect_timeout: int = 10

    @classmethod
    def parse(cls, url: str, *, connect_timeout: int = 10) -> Dsn:
        """Parse a postgresql:// URL or key=value string; PermanentError without echoing it."""
        try:
            params = conninfo.conninfo_to_dict(url)
        except psycopg.Error:
            raise PermanentError(
                "the database URL in the Secret is not a valid PostgreSQL connection string",
                provider=PROVIDER,
            ) from None
        clean = {k: str(v) for k, v in params.items() if v is not None}
        if any("\n" in v or "\r" in v for v in clean.values()):
            raise PermanentError("the database URL holds a line break", provider=PROVIDER)
        return cls(url=url, params=clean, connect_timeout=connect_timeout)

    def describe(self) -> str:
        """host:port/dbname, for messages."""
        host = self.params.get("host") or self.params.get("hostaddr") or "localhost"
        return f"{host}:{self.params.get('port', '5432')}/{self.params.get('dbname', '-')}"

    def redact(self, text: str) -> str:
        """`text` with the URL and the password replaced, for tool output we pass on."""
        for secret in (self.url, self.params.get("password", "")):
            if secret:
                text = text.replace(secret, "***")
        return text


@contextmanager
def tool_credentials(
    dsn: Dsn, base_env: Mapping[str, str], application: str | None = None
) -> Iterator[tuple[dict[str, str], str]]:
    """An environment and a `-d` value for pg_dump, pg_restore and psql; files removed after.

    The connection lives in a service file and the password in a passfile, both 0600 in a
    private directory, so neither `ps` nor /proc/<pid>/environ shows a credential.
    """
    with tempfile.TemporaryDirectory(prefix="rollback-pg-") as directory:
        params = dict(dsn.params)
        password = params.pop("password", None)
        params.setdefault("connect_timeout", str(dsn.connect_timeout))
        if application:  # a session name of its own, for the lock watchdog (pg_locks)
            params["application_name"] = application
        params.setdefault("application_name", APPLICATION)
        # No `options` startup parameter: PgBouncer refuses a connection that sends one. The
        # restore's script quiets notices itself (`scope.prelude_sql`).
        service = Path(directory, "pg_service.conf")
        passfile = Path(directory, "pgpass")
        _private_write(service, f"[{SERVICE}]\n" + "".join(f"{k}={v}\n" for k, v in params.items()))
        _private_write(passfile, f"*:*:*:*:{_passfile_escape(password)}\n" if password else "")
        env = {k: v for k, v in base_env.items() if not k.startswith("PG")}
        env.update(PGSERVICEFILE=str(service), PGPASSFILE=str(passfile), PGSYSCONFDIR=directory)
        env.update(LC_MESSAGES="C", PGCLIENTENCODING="UTF8")
        yield env, f"service={SERVICE}"


def _private_write(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text)


def _passfile_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


async def connect(dsn: Dsn) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """An autocommit connection; errors classified (unreachable, refused, no such database)."""
    try:
        return await psycopg.AsyncConnection.connect(
            dsn.url,
            autocommit=True,
            connect_timeout=int(dsn.params.get("connect_timeout", dsn.connect_timeout)),
            application_name=dsn.params.get("application_name", APPLICATION),
        )
    except psycopg.Error as error:
        raise classify(error, dsn) from None


def classify(error: psycopg.Error, dsn: Dsn) -> ProviderError:
    """Our error class for a psycopg error, with a message free of credentials."""
    text = dsn.redact(str(error)).strip().splitlines()
    detail = text[-1].strip() if text else type(error).__name__
    where = dsn.describe()
    if _AUTH.search(detail):
        return UnauthorizedError(
            f"the database at {where} refused the credentials from the Secret", provider=PROVIDER
        )
    if _NO_DATABASE.search(detail):
        return NotFoundError(f"the database {where} does not exist", provider=PROVIDER)
    if isinstance(error, psycopg.OperationalError):
        return RetryableError(f"cannot reach the database at {where}: {detail}", provider=PROVIDER)
    return PermanentError(f"the database at {where} failed: {detail}", provider=PROVIDER)


async def ping(dsn: Dsn) -> str:
    """The server's version, proving it is reachable and accepts the credentials."""
    async with await connect(dsn) as conn:
        row = await (await conn.execute("SHOW server_version")).fetchone()
    return str(row[0]) if row else "?"


async def check_session_pooling(dsn: Dsn) -> None:
    """PermanentError when the URL reaches a pooler in transaction (or statement) mode.

    pg_dump's session settings and the restore's session name would not survive from one
    transaction to the next there. Two sessions open at once never share a server process,
    directly or through a pooler in session mode; a pooler in transaction mode hands an idle
    one's process to the other, or gives one session another process for its next statement,
    which this sees. (With a busy pool it may do neither during the check, so a
    transaction-mode pooler is not always seen: the README says which URL to use.)
    """
    async with await connect(dsn) as first, await connect(dsn) as second:
        try:
            pids = [await _backend_pid(first), await _backend_pid(second)]
            pids.append(await _backend_pid(first))
        except psycopg.Error as error:
            raise classify(error, dsn) from None
    if pids[0] == pids[1] or pids[0] != pids[2]:
        raise PermanentError(
            f"the database URL reaches {dsn.describe()} through a connection pooler in "
            "transaction mode (two sessions shared one server connection), which cannot keep "
            "a restore's or a dump's session: use the direct connection or the pooler's "
            "session mode (on Supabase: the direct URL, or the pooler's port 5432, not 6543)",
            provider=PROVIDER,
        )


async def _backend_pid(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> int:
    row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    return int(str(row[0])) if row else 0


async def finished_restore(dsn: Dsn, key: str) -> tuple[str, datetime] | None:
    """The backup and time of the completed restore recorded for `key`, if any."""
    async with await connect(dsn) as conn:
        try:
            found = await conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.restores",))
            table = await found.fetchone()
            if table is None or table[0] is None:
                return None
            cursor = await conn.execute(
                f"SELECT backup, finished_at FROM {SCHEMA}.restores WHERE key = %s", (key,)
            )
            row = await cursor.fetchone()
        except psycopg.Error as error:
            raise classify(error, dsn) from None
    return (str(row[0]), row[1]) if row and isinstance(row[1], datetime) else None


MARKER_KEY, MARKER_BACKUP = "rollback_key", "rollback_backup"


def marker_sql() -> bytes:
    """The statements that record a restore, run by psql inside the restore's own transaction.

    The step key and backup name reach psql as the variables `MARKER_KEY` and `MARKER_BACKUP`
    (`psql -v`), which psql quotes itself (`:'name'`), so no name can break out of its literal.
    The primary key makes a second restore under the same key fail instead of running twice.
    """
    insert = (
        f"INSERT INTO {SCHEMA}.restores (key, backup) VALUES (:'{MARKER_KEY}', :'{MARKER_BACKUP}')"
    )
    return ("\n" + ";\n".join([*_MARKER_DDL, insert]) + ";\n").encode()
