"""A fault-injecting HTTP reverse proxy, put in front of the real servers (S3, Prometheus).

Why this module exists: the SaaS fakes inject faults themselves, but moto and Prometheus are
real programs that never answer 429, never stall and never drop a connection on cue. The
adapters reach them through a configurable endpoint (`objectStore.endpointUrl`,
`metrics.prometheus.url`), so this proxy sits in between: it forwards every request verbatim
and, for the next N requests (or all) matching a method and path glob, answers 429 with
Retry-After, a 5xx, a canned reply (S3's 403 AccessDenied in S3's XML shape), stalls past the
client's timeout, or closes the connection without an answer. It runs like the fakes, on a
loopback port in a background thread (`sandbox.fakes.http_server.RunningServer`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from aiohttp import web

from sandbox.fakes.http_server import (
    Dropped,
    FaultInjector,
    RateLimited,
    RunningServer,
    ServerError,
    Slow,
)

Shape = Literal["s3", "prometheus"]
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "content-length"}
)  # fmt: skip


@dataclass(frozen=True)
class Reply:
    """Answer with exactly this status, body and headers."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


ProxyFault = RateLimited | ServerError | Slow | Dropped | Reply


def s3_error(status: int, code: str, message: str) -> Reply:
    """An error in S3's XML shape (what botocore parses into `Error.Code`)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>FAULTPROXY0001</RequestId><HostId>fault-proxy</HostId></Error>"
    )
    return Reply(status, body.encode(), {"Content-Type": "application/xml"})


def prometheus_error(status: int, error_type: str, message: str) -> Reply:
    """An error in Prometheus' JSON envelope."""
    body = json.dumps({"status": "error", "errorType": error_type, "error": message})
    return Reply(status, body.encode(), {"Content-Type": "application/json"})


@dataclass(frozen=True)
class ProxyRecord:
    """One request as the proxy saw it: no headers or bodies, so no credential is kept."""

    method: str
    path: str
    status: int | None
    """Status answered; None when the connection was dropped or the client hung up."""
    fault: str | None


class FaultProxy:
    """Forwards to `upstream`, except where a fault rule says otherwise."""

    def __init__(self, upstream: str, *, shape: Shape) -> None:
        self.upstream = upstream.rstrip("/")
        self.shape = shape
        self._rules: FaultInjector[ProxyFault] = FaultInjector()  # routes "<METHOD> <path>"
        self._records: list[ProxyRecord] = []
        self._lock = threading.Lock()
        self._client: aiohttp.ClientSession | None = None

    # -- rules ----------------------------------------------------------------------------
    def inject(
        self, fault: ProxyFault, *, method: str = "*", path: str = "*", times: int | None = 1
    ) -> None:
        """Apply `fault` to the next `times` requests (None: all) matching both globs.

        `path` is matched against the path with its query string (`/bucket?versions`).
        """
        self._rules.add(fault, route=f"{method.upper()} {path}", times=times)

    def clear(self) -> None:
        """Forward everything from now on."""
        self._rules.clear()

    def _take(self, method: str, path: str) -> ProxyFault | None:
        return self._rules.take(f"{method} {path}")

    # -- the log --------------------------------------------------------------------------
    @property
    def records(self) -> list[ProxyRecord]:
        with self._lock:
            return list(self._records)

    def faulted(self) -> int:
        """How many requests a fault shaped."""
        return sum(1 for r in self.records if r.fault is not None)

    def _record(self, request: web.Request, status: int | None, fault: ProxyFault | None) -> None:
        name = type(fault).__name__ if fault is not None else None
        with self._lock:
            self._records.append(ProxyRecord(request.method, request.path, status, name))

    # -- serving --------------------------------------------------------------------------
    def serve(self) -> RunningServer:
        """Start the proxy on a free loopback port; use as a context manager."""
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_cleanup.append(self._close)
        return RunningServer(app).start()

    async def _close(self, _: web.Application) -> None:
        if self._client is not None:
            await self._client.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault = self._take(request.method, request.path_qs)
        if isinstance(fault, Slow):
            # Counted when taken, not when the stall ends: the client gives up and retries long
            # before, and a test reads the count as soon as its retry has succeeded.
            self._record(request, None, fault)
            await asyncio.sleep(fault.seconds)  # then, if still connected, a late real answer
            response = await self._forward(request, body)
            self._record(request, response.status, None)
            return response
        if isinstance(fault, Dropped):
            self._record(request, None, fault)
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        if isinstance(fault, RateLimited | ServerError | Reply):
            reply = self._render(fault)
            self._record(request, reply.status, fault)
            return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))
        response = await self._forward(request, body)
        self._record(request, response.status, fault)
        return response

    def _render(self, fault: RateLimited | ServerError | Reply) -> Reply:
        if isinstance(fault, Reply):
            return fault
        if isinstance(fault, RateLimited):
            reply = (
                s3_error(429, "SlowDown", "Please reduce your request rate.")
                if self.shape == "s3"
                else prometheus_error(429, "unavailable", "too many requests")
            )
            return Reply(429, reply.body, {**reply.headers, "Retry-After": str(fault.retry_after)})
        if self.shape == "s3":
            return s3_error(fault.status, "InternalError", fault.message)
        return prometheus_error(fault.status, "internal", fault.message)

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        if self._client is None:
            self._client = aiohttp.ClientSession(
                auto_decompress=False, timeout=aiohttp.ClientTimeout(total=60)
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._client.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        ) as upstream:
            data = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            response = web.Response(status=upstream.status, body=data, headers=out)
            if request.method == "HEAD" and "Content-Length" in upstream.headers:
                response.headers["Content-Length"] = upstream.headers["Content-Length"]
            return response
