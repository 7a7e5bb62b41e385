"""Shared plumbing for the fake SaaS APIs (Vercel, Railway, Slack, ...) of the tests and the demo.

Why this module exists: the fakes are real HTTP servers, so the operator's real httpx code
(auth headers, retries, timeouts, pagination) runs against them unchanged, from sync tests,
async tests and a separate operator process alike. Around their provider-specific logic both
fakes need the same machinery, kept here once: a server on a free loopback port in a
background thread with its own event loop, per-call latency, injectable faults (429, 5xx,
provider-shaped errors, slow answers, dropped connections), scripted events (something else
happens on the provider right after a given call, such as a CI deploy landing mid-rollback), a
fixed-window rate limiter, and a request log that never holds a credential (`request_log`) and
shows which calls were in flight at once (each call's arrival and answer on one count).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fnmatch
import itertools
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from aiohttp import web
from multidict import MultiMapping

from sandbox import observers
from sandbox.fakes.request_log import RequestLog, RequestRecord, redact, redact_headers

Clock = Callable[[], float]
"""Seconds since the Unix epoch; injected so tests can freeze or advance time."""


@dataclass(frozen=True)
class RateLimited:
    """Answer HTTP 429 with `Retry-After: <retry_after>` (seconds) in the provider's shape."""

    retry_after: int = 1


@dataclass(frozen=True)
class ServerError:
    """Answer a 5xx status with the provider's error body."""

    status: int = 500
    message: str = "An unexpected internal error occurred"


@dataclass(frozen=True)
class ErrorReply:
    """Answer with the provider's own error envelope (Vercel `error`, Railway GraphQL `errors`).

    `status=None` uses the provider's usual status for such errors (Vercel 400, Railway 200).
    """

    message: str
    status: int | None = None
    code: str | None = None


@dataclass(frozen=True)
class Slow:
    """Delay the answer by `seconds` (on top of the fake's latency), then answer normally."""

    seconds: float


@dataclass(frozen=True)
class Dropped:
    """Close the TCP connection without sending any response."""


Fault = RateLimited | ServerError | ErrorReply | Slow | Dropped
ReplyFault = RateLimited | ServerError | ErrorReply


F = TypeVar("F")


@dataclass
class _FaultRule(Generic[F]):
    fault: F
    route: str
    remaining: int | None


class FaultInjector(Generic[F]):
    """Ordered fault rules; a call takes the first rule whose route glob matches it.

    Routes are provider route keys: Vercel uses `"<METHOD> <path>"` (e.g.
    `"POST /v1/projects/*/rollback/*"`), Railway the GraphQL root field (e.g.
    `"deploymentRollback"`). `times=None` keeps the rule forever.
    """

    def __init__(self) -> None:
        self._rules: list[_FaultRule[F]] = []
        self._lock = threading.Lock()

    def add(self, fault: F, *, route: str = "*", times: int | None = 1) -> None:
        with self._lock:
            self._rules.append(_FaultRule(fault, route, times))

    def take(self, route: str) -> F | None:
        with self._lock:
            for rule in self._rules:
                if fnmatch.fnmatchcase(route, rule.route):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._rules.remove(rule)
                    return rule.fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rules)


@dataclass(frozen=True)
class RateState:
    """Outcome of one `RateWindow.hit`, enough to render 429s and `X-RateLimit-*` headers."""

    limit: int
    remaining: int
    reset_at: float
    """When the window ends, in Unix seconds."""
    retry_after: int
    """Whole seconds until the window ends (at least 1)."""
    exceeded: bool


class RateWindow:
    """Fixed-window request counter per key (an endpoint, or one key for a whole API)."""

    def __init__(self, limit: int, seconds: float, clock: Clock) -> None:
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str = "") -> RateState:
        now = self._clock()
        start, used = self._windows.get(key, (now, 0))
        if now - start >= self.seconds:
            start, used = now, 0
        used += 1
        self._windows[key] = (start, used)
        reset_at = start + self.seconds
        return RateState(
            limit=self.limit,
            remaining=max(0, self.limit - used),
            reset_at=reset_at,
            retry_after=max(1, math.ceil(reset_at - now)),
            exceeded=used > self.limit,
        )


@dataclass(frozen=True)
class ApiCall:
    """A request, read once, handed to the synchronous provider logic."""

    method: str
    path: str
    query: MultiMapping[str]
    headers: Mapping[str, str]
    body: Any
    """Decoded JSON body; None when empty or not JSON (see `json_error`)."""
    json_error: bool

    @classmethod
    async def read(cls, request: web.Request) -> ApiCall:
        raw = await request.read()
        body: Any = None
        json_error = False
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                json_error = True
        return cls(request.method, request.path, request.query, request.headers, body, json_error)


class FakeApi(abc.ABC):
    """Base of the fakes: owns latency, faults and the log; subclasses own the provider logic.

    Provider logic (`describe`, `dispatch`, `fault_response`, `admit`, `finish`) is
    synchronous and runs under `self.lock`, so tests may seed or inspect the fake from their
    own thread while the server thread answers calls.
    """

    def __init__(self, *, latency: float = 0.0, clock: Clock = time.time) -> None:
        self.latency = latency
        self.clock = clock
        self.faults: FaultInjector[Fault] = FaultInjector()
        self.events: FaultInjector[Callable[[], object]] = FaultInjector()
        self.log = RequestLog()
        self.lock = threading.RLock()
        self._moments = itertools.count(1)  # arrivals and answers, in the order they happen
        observers.fake_started(self)

    def inject(self, fault: Fault, *, route: str = "*", times: int | None = 1) -> None:
        """Queue a fault for the next `times` calls whose route key matches the glob."""
        self.faults.add(fault, route=route, times=times)

    def after(self, route: str, event: Callable[[], object], *, times: int | None = 1) -> None:
        """Run `event` (under `lock`) right after each of the next `times` calls whose route
        key matches the glob has been answered from the fake's state."""
        self.events.add(event, route=route, times=times)

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def serve(self) -> RunningServer:
        """Start this fake on 127.0.0.1 with a free port; use as a context manager."""
        return RunningServer(self.build_app()).start()

    @abc.abstractmethod
    def describe(self, call: ApiCall) -> tuple[str, bool]:
        """Route key used by fault rules and the log, and whether the call mutates state."""

    @abc.abstractmethod
    def dispatch(self, call: ApiCall) -> web.Response:
        """Answer the call from the fake's state."""

    @abc.abstractmethod
    def fault_response(self, fault: ReplyFault) -> web.Response:
        """Render an injected fault in the provider's error shape."""

    @abc.abstractmethod
    def secrets(self) -> Iterable[str]:
        """Every credential the fake knows, to be scrubbed from the log."""

    def shown(self) -> list[Any]:
        """What the fake would show people (messages, incidents, alerts), for the leak scan."""
        return []

    def admit(self, call: ApiCall, route: str) -> web.Response | None:
        """Provider-level gate before dispatch (e.g. rate limiting); None lets the call in."""
        return None

    @abc.abstractmethod
    def finish(self, call: ApiCall, response: web.Response) -> None:
        """Last touch on every answered response (e.g. tracing or rate-limit headers)."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = await ApiCall.read(request)
        with self.lock:
            arrived = next(self._moments)
            route, mutating = self.describe(call)
        fault = self.faults.take(route)
        delay = self.latency + (fault.seconds if isinstance(fault, Slow) else 0.0)
        if delay > 0:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:  # the client hung up first (e.g. its timeout fired)
                self._record(call, route, mutating, None, fault, arrived)
                raise
        if isinstance(fault, Dropped):
            self._record(call, route, mutating, None, fault, arrived)
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        with self.lock:
            if isinstance(fault, RateLimited | ServerError | ErrorReply):
                response = self.fault_response(fault)
            elif (refused := self.admit(call, route)) is not None:
                response = refused
            else:
                response = self.dispatch(call)
                event = self.events.take(route)
                if event is not None:
                    event()
            self.finish(call, response)
        self._record(call, route, mutating, response.status, fault, arrived)
        return response

    def _record(
        self,
        call: ApiCall,
        route: str,
        mutating: bool,
        status: int | None,
        fault: Fault | None,
        arrived: int,
    ) -> None:
        secrets = list(self.secrets())
        with self.lock:
            answered = next(self._moments)
        self.log.append(
            RequestRecord(
                method=call.method,
                path=redact(call.path, secrets),
                route=redact(route, secrets),
                query={k: redact(v, secrets) for k, v in call.query.items()},
                body=redact(call.body, secrets),
                headers=redact_headers(call.headers, secrets),
                status=status,
                mutating=mutating,
                fault=type(fault).__name__ if fault is not None else None,
                arrived=arrived,
                answered=answered,
            )
        )


class RunningServer:
    """An aiohttp app served on a loopback port by a daemon thread with its own event loop."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1") -> None:
        self._app = app
        self._host = host
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self, timeout: float = 5.0) -> Self:
        if self._thread is not None:
            return self
        self._loop = asyncio.new_event_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self._host, 0))
        self._port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, args=(self._loop, sock), name=f"fake-api-{self._port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"fake server on {self.url} did not start in {timeout}s")
        if self._error is not None:
            raise RuntimeError(f"fake server on {self.url} failed to start") from self._error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None or self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    def _run(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(
            self._app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock).start())
        except BaseException as exc:  # reported to start() in the caller's thread
            self._error = exc
            sock.close()
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
