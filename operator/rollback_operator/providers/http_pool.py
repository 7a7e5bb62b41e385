"""The operator's connections to provider hosts: kept alive, shared, and cheap per request.

Why this module exists: adapters live for one rollback and open a session per operation; with a
client per session every plan, rollback and notice opened a new connection (in production a
TLS handshake too). One aiohttp session per event loop now carries every provider request
(`SharedTransport`): it keeps connections alive across operations, rollbacks and policies, and
costs a fraction of httpx's own connection pool per request, whose bookkeeping looks at every
connection each time a request starts or ends (docs/benchmarks.md: 0.6-2 ms of CPU per request
against 0.4 ms, a third of the operator's CPU in a burst of 100 rollbacks). The adapters'
sessions send on it through a `PooledClient`, which speaks httpx's requests, responses and
errors without the client's per-request machinery; a transport of a caller's own (the
notifiers' webhook wrappers, the tests') is an httpx transport under an httpx client.

Nothing personal is shared: the pooled clients hold no credentials (each request carries its
own headers) and neither they nor the session keep cookies.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import urllib.request
import weakref
from collections.abc import Mapping
from json import dumps as json_dumps
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
import yarl

from rollback_operator import __version__

USER_AGENT = f"rollback-operator/{__version__}"
CONNECTIONS = 256
"""Connections open at once across every host; 64 to one host."""
KEEPALIVE = 30.0
"""Seconds an idle connection is kept for the next request."""
_HOP_BY_HOP = frozenset({b"content-length", b"transfer-encoding", b"connection"})
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")
_DEFAULT_HEADERS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "user-agent": USER_AGENT,
}
"""What httpx's client sends with every request, but the encodings it decodes only with optional
packages (aiohttp adds Host and keeps the connection alive); `httpx.Response` decodes the
answers as before. Names in lower case, as a caller's are made, so that one of a caller's
replaces a default whatever its case."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of every client (httpx's defaults: certifi's CAs, or SSL_CERT_FILE).

    Made once per process: loading the CA bundle costs milliseconds of CPU, and a context per
    client was a third of the operator's CPU while it started 100 rollbacks at once."""
    return httpx.create_ssl_context()


class SharedTransport(httpx.AsyncBaseTransport):
    """httpx requests sent on one aiohttp session. httpx's timeouts hold (connect, covering
    the wait for a free connection, and read); aiohttp's failures come back as the httpx
    errors they are, so whether a request may have reached the server is told as before."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower() not in _HOP_BY_HOP
        ]
        body = await request.aread()
        url = yarl.URL(str(request.url), encoded=True)
        timeouts = request.extensions.get("timeout", {})
        try:
            status, raw, content = await self.exchange(
                request.method, url, headers, body or None, timeouts
            )
        except (TimeoutError, aiohttp.ClientError) as error:
            raise _as_httpx(error, request) from error
        return httpx.Response(status, headers=raw, content=content, request=request)

    async def exchange(
        self, method: str, url: yarl.URL, headers: list[tuple[str, str]], body: bytes | None,
        timeouts: Mapping[str, float | None],
    ) -> tuple[int, list[tuple[str, str]], bytes]:  # fmt: skip
        """One request on the session: the answer's status, raw headers and undecoded body.
        aiohttp's failures are raised as they are."""
        connect, read, _, pool = (timeouts.get(k) for k in _TIMEOUT_KEYS)
        waited = None if connect is None else connect + (pool or 0.0)
        limit = aiohttp.ClientTimeout(
            total=None, connect=waited, sock_connect=connect, sock_read=read
        )
        async with self._open().request(
            method, url, headers=headers, data=body, allow_redirects=False, timeout=limit,
            proxy=self._proxy(url),
        ) as answer:  # fmt: skip
            content = await answer.read()
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers]
        return answer.status, raw, content

    async def aclose(self) -> None:
        """Nothing: the transport outlives the clients over it (`close_pooled_clients`)."""

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()

    def _proxy(self, url: yarl.URL) -> str | None:
        """The egress proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY,
        ALL_PROXY, NO_PROXY, as httpx's own transport honours them), or None."""
        found = self._proxies.get(url.scheme) or self._proxies.get("all")
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # untyped
        return None if found is None or bypass(url.host or "", self._proxies) else found

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._proxies = urllib.request.getproxies_environment()
            connector = aiohttp.TCPConnector(
                ssl=tls_context(), limit=CONNECTIONS, limit_per_host=CONNECTIONS // 4,
                keepalive_timeout=KEEPALIVE,
            )  # fmt: skip
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
            )  # httpx decodes the body, as it advertised in Accept-Encoding
        return self._session


def _as_httpx(error: BaseException, request: httpx.Request | None) -> httpx.TransportError:
    """aiohttp's failure as httpx's: a connect that failed or timed out sent nothing."""
    text = str(error) or type(error).__name__
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    if isinstance(error, (aiohttp.ServerTimeoutError, TimeoutError)):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(text, request=request)
    return httpx.ReadError(text, request=request)


class PooledClient:
    """Requests to one base URL on the shared session, sent as `httpx.AsyncClient.request`
    sends them (its default headers, its JSON and query encoding; `tests/unit/
    test_http_pool.py` holds the two side by side) and answered as httpx answers, without the
    client's per-request machinery: URL models, auth and redirect flows, the cookie jar, event
    hooks. That machinery was half of a provider request's CPU in the operator (0.54 ms a
    request against 0.23 ms, docs/benchmarks.md)."""

    def __init__(self, base_url: str, timeouts: httpx.Timeout, transport: SharedTransport) -> None:
        self._base = base_url.rstrip("/")
        self._timeouts = {k: getattr(timeouts, k) for k in _TIMEOUT_KEYS}
        self._transport = transport
        self.is_closed = False

    async def request(
        self, method: str, url: str, *, params: Mapping[str, str] | None = None,
        json: Any = None, headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:  # fmt: skip
        """Send one request (`url` is a path under the base URL); the full answer, its body
        decoded as httpx decodes it; a failure to reach the server as httpx's error."""
        target = yarl.URL(f"{self._base}/{url.lstrip('/')}")
        if params:  # encoded as httpx encodes them (urlencode's `+` and `%2F`), after any given
            joint = "&" if target.raw_query_string else "?"
            target = yarl.URL(f"{target}{joint}{urlencode(params)}", encoded=True)
        sent = {**_DEFAULT_HEADERS, **{k.lower(): v for k, v in (headers or {}).items()}}
        body = None
        if json is not None:
            body = json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            sent["content-type"] = "application/json"
        data = None if body is None else body.encode("utf-8")
        try:
            status, raw, content = await self._transport.exchange(
                method, target, list(sent.items()), data, self._timeouts
            )
        except (TimeoutError, aiohttp.ClientError) as error:
            raise _as_httpx(error, None) from error
        return httpx.Response(status, headers=raw, content=content)

    async def aclose(self) -> None:
        """Nothing to close of its own: the connections are the shared session's."""
        self.is_closed = True


_Loop = asyncio.AbstractEventLoop
_TRANSPORTS: weakref.WeakKeyDictionary[_Loop, SharedTransport] = weakref.WeakKeyDictionary()
_CLIENTS: weakref.WeakKeyDictionary[_Loop, dict[tuple[Any, ...], PooledClient]]
_CLIENTS = weakref.WeakKeyDictionary()


def shared_transport() -> SharedTransport:
    """The running loop's transport (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _TRANSPORTS.get(loop)
    if found is None:
        found = _TRANSPORTS[loop] = SharedTransport()
    return found


def pooled_client(base_url: str, timeouts: httpx.Timeout) -> PooledClient:
    """The running loop's client for `base_url` with these timeouts, over `shared_transport`,
    made on first use and kept until `close_pooled_clients`."""
    key = (base_url, *(getattr(timeouts, k) for k in _TIMEOUT_KEYS))
    clients = _CLIENTS.setdefault(asyncio.get_running_loop(), {})
    found = clients.get(key)
    if found is None or found.is_closed:
        found = clients[key] = PooledClient(base_url, timeouts, shared_transport())
    return found


async def close_pooled_clients() -> None:
    """Close the running loop's clients and their connections (the operator stops)."""
    loop = asyncio.get_running_loop()
    for client in _CLIENTS.pop(loop, {}).values():
        await client.aclose()
    transport = _TRANSPORTS.pop(loop, None)
    if transport is not None:
        await transport.close()
