"""The post-rollback checklist: HTTP health, SQL checks, cache PING, each retried in a window.

Every check is one small class with `name` and `run() -> CheckResult`; `Checklist` runs them
together and keeps retrying the failing ones until they pass or the window ends, because a
service that has just been rolled back may need a few seconds to come up. Results carry no
secrets: SQL and cache checks never print their connection strings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

import httpx
import psycopg
import redis
import redis.asyncio

from rollback_operator.api.common import parse_duration
from rollback_operator.api.policy import Expect, HealthCheck, RollbackPolicy, SqlCheck
from rollback_operator.api.rollback import CheckResult
from rollback_operator.providers.base import SecretReader
from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.http import make_client

Spec = TypeVar("Spec", HealthCheck, SqlCheck)


class Check(Protocol):
    """One item of the checklist."""

    @property
    def name(self) -> str:
        """The check's name in the results."""
        ...

    async def run(self) -> CheckResult:
        """Run once; never raises (a failure is a CheckResult with passed=False)."""
        ...


@dataclass
class PolicyCheck(Generic[Spec]):
    """A check a block of the policy's `verify` asks for, named as that block names it."""

    spec: Spec

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class HttpCheck(PolicyCheck[HealthCheck]):
    """GET a URL and expect a status code."""

    timeout: float = 5.0

    async def run(self) -> CheckResult:
        started = time.monotonic()
        try:
            async with make_client("", {}) as client:
                response = await client.get(self.spec.url, timeout=self.timeout)
        except httpx.HTTPError as error:
            return CheckResult(name=self.name, passed=False, message=type(error).__name__)
        took = f"{(time.monotonic() - started) * 1000:.0f}ms"
        passed = response.status_code == self.spec.expect_status
        wanted = "" if passed else f" (expected {self.spec.expect_status})"
        return CheckResult(
            name=self.name, passed=passed, message=f"{response.status_code} in {took}{wanted}"
        )


def meets(value: Any, expect: Expect) -> str | None:
    """Why `value` misses `expect`, or None when it meets it."""
    if expect.equals is not None and str(value) != expect.equals:
        return f"{shown_value(value)} is not {expect.equals!r}"
    if expect.min is None and expect.max is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{shown_value(value)} is not a number"
    if expect.min is not None and number < expect.min:
        return f"{number:g} is below {expect.min:g}"
    if expect.max is not None and number > expect.max:
        return f"{number:g} is above {expect.max:g}"
    return None


@dataclass
class SqlQueryCheck(PolicyCheck[SqlCheck]):
    """One value from a read-only query must meet `expect`."""

    url: str
    statement_timeout_ms: int = 5000

    async def run(self) -> CheckResult:
        try:
            value = await self._value()
        except psycopg.Error as error:
            return CheckResult(name=self.name, passed=False, message=_sql_error(error))
        problem = meets(value, self.spec.expect)
        message = problem or shown_value(value)
        return CheckResult(name=self.name, passed=problem is None, message=message)

    async def _value(self) -> Any:
        """The first column of the first row, read in a session that cannot write.

        The session is read-only from its start (`default_transaction_read_only`, set by the
        connection's options, and the transaction itself), every statement has a timeout, and
        the query is sent as a prepared statement, which PostgreSQL parses as exactly one
        statement: `SELECT 1; COMMIT; DELETE ...` is refused before anything runs.
        """
        timeout = int(self.statement_timeout_ms)
        options = (
            f"-c default_transaction_read_only=on -c statement_timeout={timeout}"
            f" -c idle_in_transaction_session_timeout={timeout * 2}"
        )
        connect = psycopg.AsyncConnection.connect
        async with await connect(self.url, connect_timeout=5, options=options) as conn:
            await conn.set_read_only(True)
            async with conn.cursor() as cursor:
                await cursor.execute(self.spec.query.encode(), prepare=True)
                row = await cursor.fetchone()
        return row[0] if row else None


SHOWN_TEXT = 40  # longer text, or anything but a scalar, is data: its value is not shown


def shown_value(value: Any) -> str:
    """A check's value as the status and report may show it: short scalars only."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        return f"{value}"
    if isinstance(value, str) and len(value) <= SHOWN_TEXT and value.isprintable():
        return repr(value)
    size = f", {len(value)} characters" if isinstance(value, str) else ""
    return f"a {type(value).__name__} value{size} (not shown)"


def _sql_error(error: psycopg.Error) -> str:
    """The server's message without connection details."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    return f"{type(error).__name__}: {primary}" if primary else type(error).__name__


@dataclass
class FunctionCheck:
    """A check from a coroutine function (storage, cache); its error text is the message."""

    name: str
    probe: Callable[[], Awaitable[str]]

    async def run(self) -> CheckResult:
        try:
            message = await self.probe()
        except Exception as error:  # a probe may fail in any way; the checklist reports it
            return CheckResult(
                name=self.name, passed=False, message=str(error) or type(error).__name__
            )
        return CheckResult(name=self.name, passed=True, message=message)


@dataclass
class Checklist:
    """The `Verifier`: every check, retried until it passes or `window` seconds are over."""

    checks: Sequence[Check]
    window: float = 0.0
    interval: float = 2.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic

    async def verify(self) -> list[CheckResult]:
        return list(await asyncio.gather(*(self._until_passed(c) for c in self.checks)))

    async def _until_passed(self, check: Check) -> CheckResult:
        deadline = self.clock() + self.window
        while True:
            result = await check.run()
            if result.passed or self.clock() + self.interval > deadline:
                return result
            await self.sleep(self.interval)


PING_TIMEOUT = 5.0


async def ping(url: str) -> str:
    """PING a Redis-compatible cache; the error never shows the URL (it may hold a password)."""
    client = redis.asyncio.Redis.from_url(
        url, socket_timeout=PING_TIMEOUT, socket_connect_timeout=PING_TIMEOUT
    )
    started = time.monotonic()
    try:
        answered = await client.ping()
    except redis.RedisError as error:
        raise RuntimeError(f"cache did not answer PING: {type(error).__name__}") from None
    finally:
        await client.aclose()
    took = (time.monotonic() - started) * 1000
    return f"PONG in {took:.0f}ms" if answered else "no PONG"


async def build(
    policy: RollbackPolicy,
    secrets: SecretReader,
    *,
    storage_probe: Callable[[], Awaitable[str]] | None = None,
    sql_url: str | None = None,
) -> Checklist | None:
    """The checklist a policy's `verification` asks for; None when it asks for nothing."""
    spec = policy.spec.verification
    checks: list[Check] = [HttpCheck(h) for h in spec.health_checks]
    if spec.sql_checks:
        if sql_url is None:
            raise PermanentError("verification.sqlChecks: the policy defines no database target")
        checks += [SqlQueryCheck(s, sql_url) for s in spec.sql_checks]
    if spec.cache is not None:
        ref = spec.cache.url_secret_ref
        url = await secrets.read(policy.metadata.namespace, ref.name, ref.key)
        checks.append(FunctionCheck("cache", lambda: ping(url)))
    if spec.storage:
        if storage_probe is None:
            raise PermanentError("verification.storage: the policy defines no storage target")
        checks.append(FunctionCheck("storage", storage_probe))
    if not checks:
        return None
    return Checklist(checks, window=parse_duration(spec.window).total_seconds())
