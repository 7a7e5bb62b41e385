"""Helpers shared by the adapter suites: virtual time, fast wire options and the fault matrix.

The adapters run over real HTTP against the stateful fakes; only waiting is virtual. Retry
backoff and job polling sleep on `VirtualTime`, so a 429 with `Retry-After: 1` costs no real
second, while timeouts stay real (and tiny) because they happen inside httpx.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rollback_operator.providers import errors, http
from rollback_operator.providers.endpoints import Endpoints
from sandbox.fakes.http_server import Dropped, Fault, RateLimited, ServerError, Slow

FAKES = Endpoints(("http://127.0.0.1",))
"""Where the real adapters may send credentials in tests: the fakes, on loopback."""
READ_TIMEOUT = 0.15


@dataclass
class VirtualTime:
    """A monotonic clock that only moves when someone sleeps on it."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def fast_options(time: VirtualTime) -> http.Options:
    """Three attempts, tiny backoff, real but short timeouts, no jitter."""
    return http.Options(
        retry=http.RequestRetries(attempts=3, base_delay=0.01, max_delay=0.05, budget=30.0),
        timeouts=httpx.Timeout(connect=1.0, read=READ_TIMEOUT, write=1.0, pool=1.0),
        sleep=time.sleep,
        clock=time.clock,
        jitter=lambda low, high: high,
    )


@pytest.fixture
def virtual_time() -> VirtualTime:
    return VirtualTime()


class DictSecrets:
    """A `SecretReader` over a dict keyed by (namespace, name, key), recording each read."""

    def __init__(self, values: dict[tuple[str, str, str], str]) -> None:
        self.values = values
        self.reads: list[tuple[str, str, str]] = []

    async def read(self, namespace: str, name: str, key: str) -> str:
        self.reads.append((namespace, name, key))
        return self.values[(namespace, name, key)]


def only_target(target: str, config: dict[str, Any]) -> dict[str, Any]:
    """Spec changes for `manifests.policy` leaving just one target, with `config`."""
    others = {t: None for t in ("frontend", "backend", "database", "storage") if t != target}
    return {"targets": {**others, target: config}, "objectStore": None}


# ----- the fault matrix: operation x fault -----

OPERATIONS = ("plan", "candidates", "stop traffic", "rollback", "resume traffic")
FAULTS: dict[str, Fault] = {
    "429-retry-after": RateLimited(retry_after=1),
    "500": ServerError(500),
    "slow": Slow(READ_TIMEOUT * 8),
    "dropped": Dropped(),
}
PERSISTENT_ERRORS: dict[str, type[errors.ProviderError]] = {
    "429-retry-after": errors.RateLimitedError,
    "500": errors.RetryableError,
    "slow": errors.RetryableError,
    "dropped": errors.RetryableError,
    "bad-token": errors.UnauthorizedError,
}


def assert_clean_failure(
    error: errors.ProviderError, fault: str, operation: str, secrets: list[str], logs: str
) -> None:
    """The error has the fault's class, names the operation, and no secret is anywhere."""
    assert type(error) is PERSISTENT_ERRORS[fault], f"{type(error).__name__}: {error}"
    assert f": {operation}: " in f": {error}", str(error)
    if fault == "429-retry-after":
        assert isinstance(error, errors.RateLimitedError)
        assert error.retry_after == 1.0
    for secret in secrets:
        assert secret not in str(error)
        assert secret not in repr(error.args)
        assert secret not in logs
