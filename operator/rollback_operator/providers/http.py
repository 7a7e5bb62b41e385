"""The one HTTP layer every provider adapter stands on: clients, bounded retries, error classes.

Why this module exists: Vercel, Railway and the notifiers need the same care on the wire:
timeouts, a few retries with jittered exponential backoff on transient failures (timeouts,
dropped connections, 5xx), `Retry-After` and rate-limit reset headers honoured on 429, and one
mapping from the final outcome to the `providers.errors` hierarchy (what a failed answer means
is read in `providers.http_failures`), so the step engine can decide between "try the step
again later" and "fail it". Retries here are the short, inner layer; the engine's step retries
are the outer one (docs/architecture.md, "Retries").

Each attempt is reported to the `OBSERVER` of the running context (the composition root sets
it to the operator's telemetry), so provider latency and errors are measured in one place.

Connections are kept alive across operations, rollbacks and policies (`providers.http_pool`):
an operation's client holds no credentials (each request carries its own headers) and keeps no
cookies, so nothing one adapter was told reaches another's request.

Credentials travel only in headers. Requests are described as `METHOD /path (label)` with no
query string, and every text that reaches a log line or an exception is scrubbed of the
secrets this layer was given.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

from rollback_operator.providers import errors
from rollback_operator.providers.http_failures import Failure, classify
from rollback_operator.providers.http_pool import USER_AGENT as USER_AGENT
from rollback_operator.providers.http_pool import PooledClient, pooled_client
from rollback_operator.providers.http_pool import close_pooled_clients as close_pooled_clients
from rollback_operator.providers.http_pool import shared_transport as shared_transport
from rollback_operator.providers.http_pool import tls_context as tls_context

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
DEFAULT_TIMEOUTS = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)
_REDACTED = "***"
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


T = TypeVar("T")


class RequestObserver(Protocol):
    """Told about every attempt of every request (the operator's telemetry)."""

    def provider_request(self, provider: str, seconds: float, error: str | None) -> None: ...


OBSERVER: ContextVar[RequestObserver | None] = ContextVar("http_observer", default=None)
"""Set once by the composition root; tasks started after inherit it, other runs do not."""


@dataclass(frozen=True)
class RequestRetries:
    """How hard one request tries before its failure goes up to the step's own retries."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    budget: float = 30.0
    """Seconds one request may spend on all its attempts and waits."""
    max_wait: float = 30.0
    """Longest `Retry-After` waited here; a longer one goes up as RateLimitedError at once."""

    def backoff(self, attempt: int, jitter: Callable[[float, float], float]) -> float:
        """Exponential backoff with 'equal jitter': between half and all of the ceiling."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return jitter(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Options:
    """Everything tunable about the wire; tests shrink the delays and inject time."""

    retry: RequestRetries = field(default_factory=RequestRetries)
    timeouts: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUTS)
    """Per-phase timeouts of one attempt, in seconds."""
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.monotonic
    wall: Clock = time.time
    jitter: Callable[[float, float], float] = random.uniform
    transport: httpx.AsyncBaseTransport | None = None


def make_client(
    base_url: str, headers: Mapping[str, str], options: Options | None = None
) -> httpx.AsyncClient:
    """An httpx client with our timeouts, connection limits, user agent and TLS context."""
    opts = options or Options()
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"User-Agent": USER_AGENT, **headers},
        timeout=opts.timeouts,
        limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
        transport=opts.transport,
        verify=tls_context(),
        follow_redirects=False,
    )


@dataclass(frozen=True)
class Call:
    """One request and the operation it serves; `describe` is safe to log."""

    operation: str
    method: str
    path: str
    params: Mapping[str, str] | None = None
    json: Any = None
    label: str = ""
    idempotent: bool = True
    """False: not resent after a failure the server may already have acted on."""

    def describe(self) -> str:
        return f"{self.method} {self.path}" + (f" ({self.label})" if self.label else "")


class Http:
    """One provider's endpoint: its base URL, credential headers and wire options."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        options: Options | None = None,
    ) -> None:
        self.provider = provider
        self.options = options or Options()
        self._base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        """Sent with each request (credentials among them); a pooled client holds none."""
        self._secrets = _secret_parts(headers)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """The calls of one adapter operation, on the host's kept-alive connections; over a
        transport of the caller's own (`Options.transport`), on a client of this operation."""
        if self.options.transport is not None:
            async with make_client(self._base_url, {}, self.options) as client:
                yield Session(self, client)
        else:
            yield Session(self, pooled_client(self._base_url, self.options.timeouts))

    def scrub(self, text: str) -> str:
        """`text` with every secret this endpoint knows replaced."""
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def error(self, message: str, kind: type[errors.ProviderError]) -> errors.ProviderError:
        """An error of `kind` from this provider, scrubbed."""
        return kind(self.scrub(message), provider=self.provider)


class Session:
    """An open client that sends `Call`s with retries."""

    def __init__(self, http: Http, client: httpx.AsyncClient | PooledClient) -> None:
        self.http = http
        self._client = client

    async def send(self, call: Call) -> httpx.Response:
        """The first 2xx answer; else the final failure as a `providers.errors` class."""
        opts, started = self.http.options, self.http.options.clock()
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(call)
            if isinstance(outcome, httpx.Response):
                logger.debug(
                    "%s: %s: %s -> %d", self.http.provider, call.operation,
                    self.http.scrub(call.describe()), outcome.status_code,
                )  # fmt: skip
                return outcome
            delay = self._delay(call, outcome, attempt, opts.clock() - started)
            if delay is None:
                raise self._final(call, outcome, attempt)
            logger.info(
                "%s: %s: %s: %s; retry %d in %.2fs",
                self.http.provider,
                call.operation,
                call.describe(),
                self.http.scrub(outcome.detail),
                attempt,
                delay,
            )
            await opts.sleep(delay)

    async def _attempt(self, call: Call) -> httpx.Response | Failure:
        clock, started = self.http.options.clock, self.http.options.clock()
        outcome = await self._request(call)
        observer = OBSERVER.get()
        if observer is not None:
            error = None if isinstance(outcome, httpx.Response) else outcome.label
            observer.provider_request(self.http.provider, clock() - started, error)
        return outcome

    async def _request(self, call: Call) -> httpx.Response | Failure:
        try:
            response = await self._client.request(
                call.method, call.path, params=call.params, json=call.json,
                headers=self.http.headers,
            )  # fmt: skip
        except httpx.TimeoutException as exc:
            return Failure(f"timed out ({type(exc).__name__})", errors.RetryableError,
                            sent=not isinstance(exc, _NOT_SENT))  # fmt: skip
        except httpx.TransportError as exc:
            return Failure(f"connection failed ({type(exc).__name__})", errors.RetryableError,
                            sent=not isinstance(exc, _NOT_SENT))  # fmt: skip
        if response.is_success:
            return response
        return classify(response, self.http.options.wall())

    def _delay(self, call: Call, failure: Failure, attempt: int, elapsed: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        policy, opts = self.http.options.retry, self.http.options
        safe = call.idempotent or not failure.sent or failure.status == 429
        if not failure.retryable or not safe or attempt >= policy.attempts:
            return None
        if failure.retry_after is not None:
            if failure.retry_after > policy.max_wait:
                return None
            delay = failure.retry_after + opts.jitter(0.0, policy.base_delay)
        else:
            delay = policy.backoff(attempt, opts.jitter)
        return delay if elapsed + delay <= policy.budget else None

    def _final(self, call: Call, failure: Failure, attempts: int) -> errors.ProviderError:
        tries = f" (gave up after {attempts} attempts)" if attempts > 1 else ""
        message = self.http.scrub(f"{call.operation}: {call.describe()}: {failure.detail}{tries}")
        provider = self.http.provider
        if failure.kind is errors.Refused:
            return errors.Refused(message, provider=provider, status=failure.status or 400,
                           code=failure.code)  # fmt: skip
        if issubclass(failure.kind, errors.RetryableError):
            return failure.kind(message, provider=provider, retry_after=failure.retry_after)
        return failure.kind(message, provider=provider)


async def json_answer(session: Session, call: Call, kind: type[T]) -> T:
    """Send `call` and return its JSON answer, which must be a `kind` (dict or list)."""
    response = await session.send(call)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, kind):
        what = "object" if kind is dict else kind.__name__
        message = f"{call.operation}: {call.describe()}: answer is not a JSON {what}"
        raise session.http.error(message, errors.PermanentError)
    return body


async def json_object(session: Session, call: Call) -> dict[str, Any]:
    """Send `call` and return its answer, which must be a JSON object."""
    answer: dict[str, Any] = await json_answer(session, call, dict)
    return answer


def _secret_parts(headers: Mapping[str, str]) -> list[str]:
    """Every credential in `headers`, with and without its auth scheme word."""
    parts = []
    for value in headers.values():
        parts.append(value)
        scheme, _, rest = value.partition(" ")
        parts.extend([rest] if rest and scheme.lower() in ("bearer", "basic", "token") else [])
    return sorted({p for p in parts if len(p) >= 4}, key=len, reverse=True)
