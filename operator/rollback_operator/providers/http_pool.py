"""The operator's connections to provider hosts: kept alive, shared, and cheap per request.

Why this module exists: adapters live for one rollback and open a session per operation; with a
client per session every plan, rollback and notice opened a new connection (in production a
TLS handshake too). One aiohttp session per event loop now carries every provider request
(`SharedTransport`, an httpx transport, so the HTTP layer above keeps httpx's requests,
responses and errors): it keeps connections alive across operations, rollbacks and policies,
and costs a fraction of httpx's own connection pool per request, whose bookkeeping looks at
every connection each time a request starts or ends (docs/benchmarks.md: 0.6-2 ms of CPU per
request against 0.4 ms, a third of the operator's CPU in a burst of 100 rollbacks).

Nothing personal is shared: the pooled clients hold no credentials (each request carries its
own headers) and neither they nor the session keep cookies.
"""

from __future__ import annotations

import asyncio
import functools
import http.cookiejar
import ssl
import urllib.request
import weakref
from typing import Any

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


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of every client (httpx's defaults: certifi's CAs, or SSL_CERT_FILE).

    Made once per process: loading the CA bundle costs milliseconds of CPU, and a context per
    client was a third of the operator's CPU while it started 100 rollbacks at once."""
    return httpx.create_ssl_context()


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Refuses every cookie: a pooled client serves many adapters, tenants and credentials."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class SharedTransport(httpx.AsyncBaseTransport):
    """httpx requests sent on one aiohttp session. httpx's timeouts hold (connect, covering
    the wait for a free connection, and read); aiohttp's failures come back as the httpx
    errors they are, so whether a request may have reached the server is told as before."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        connect, read, _, pool = (timeouts.get(k) for k in _TIMEOUT_KEYS)
        waited = None if connect is None else connect + (pool or 0.0)
        limit = aiohttp.ClientTimeout(
            total=None, connect=waited, sock_connect=connect, sock_read=read
        )
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower() not in _HOP_BY_HOP
        ]
        body = await request.aread()
        session = self._open()
        try:
            async with session.request(
                request.method, yarl.URL(str(request.url), encoded=True), headers=headers,
                data=body or None, allow_redirects=False, timeout=limit,
                proxy=self._proxy(request.url),
            ) as answer:  # fmt: skip
                content = await answer.read()
        except (TimeoutError, aiohttp.ClientError) as error:
            raise _as_httpx(error, request) from error
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers]
        return httpx.Response(answer.status, headers=raw, content=content, request=request)

    async def aclose(self) -> None:
        """Nothing: the transport outlives the clients over it (`close_pooled_clients`)."""

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()

    def _proxy(self, url: httpx.URL) -> str | None:
        """The egress proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY,
        ALL_PROXY, NO_PROXY, as httpx's own transport honours them), or None."""
        found = self._proxies.get(url.scheme) or self._proxies.get("all")
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # untyped
        return None if found is None or bypass(url.host, self._proxies) else found

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


def _as_httpx(error: BaseException, request: httpx.Request) -> httpx.TransportError:
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


_Loop = asyncio.AbstractEventLoop
_TRANSPORTS: weakref.WeakKeyDictionary[_Loop, SharedTransport] = weakref.WeakKeyDictionary()
_CLIENTS: weakref.WeakKeyDictionary[_Loop, dict[tuple[Any, ...], httpx.AsyncClient]]
_CLIENTS = weakref.WeakKeyDictionary()


def shared_transport() -> SharedTransport:
    """The running loop's transport (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _TRANSPORTS.get(loop)
    if found is None:
        found = _TRANSPORTS[loop] = SharedTransport()
    return found


def pooled_client(base_url: str, timeouts: httpx.Timeout) -> httpx.AsyncClient:
    """The running loop's client for `base_url` with these timeouts, over `shared_transport`,
    made on first use and kept open until `close_pooled_clients`."""
    key = (base_url, *(getattr(timeouts, k) for k in _TIMEOUT_KEYS))
    clients = _CLIENTS.setdefault(asyncio.get_running_loop(), {})
    found = clients.get(key)
    if found is None or found.is_closed:
        found = clients[key] = httpx.AsyncClient(
            base_url=base_url,
            headers={"User-Agent": USER_AGENT},
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
            timeout=timeouts,
            transport=shared_transport(),
            follow_redirects=False,
        )
    return found


async def close_pooled_clients() -> None:
    """Close the running loop's clients and their connections (the operator stops)."""
    loop = asyncio.get_running_loop()
    for client in _CLIENTS.pop(loop, {}).values():
        await client.aclose()
    transport = _TRANSPORTS.pop(loop, None)
    if transport is not None:
        await transport.close()
