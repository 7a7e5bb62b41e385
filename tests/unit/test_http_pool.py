"""Adapters keep their connections to a provider host alive across operations, and share them
without sharing what is personal: each request carries its own credentials, and no cookie a
server set comes back on anyone's request.

The server here is a few lines of HTTP/1.1 over asyncio that counts the connections it accepts
and keeps every request's headers: exactly what the claims are about.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from rollback_operator.providers import http


@dataclass
class CountingServer:
    """Answers every request `answer` (with a cookie), on keep-alive connections it counts;
    keeps each request's line, headers and body."""

    connections: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    url: str = ""
    answer: bytes = b"{}"
    encoding: str | None = None
    """The answer's Content-Encoding, when `answer` is encoded."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while head := await reader.readuntil(b"\r\n\r\n"):
            line, *lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
            self.bodies.append(await reader.readexactly(int(headers.get("content-length", "0"))))
            self.requests.append(headers)
            self.lines.append(line)
            encoded = f"Content-Encoding: {self.encoding}\r\n" if self.encoding else ""
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Set-Cookie: session=from-the-server; Path=/\r\n"
                + f"{encoded}Content-Length: {len(self.answer)}\r\n\r\n".encode()
                + self.answer
            )
            await writer.drain()


@pytest.fixture
async def server() -> AsyncIterator[CountingServer]:
    counting = CountingServer()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await counting.serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0)
    counting.url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    try:
        yield counting
    finally:
        await http.close_pooled_clients()
        listening.close()


async def _operation(endpoint: http.Http, operation: str) -> None:
    """One adapter operation: a session and two calls, as adapters make them."""
    async with endpoint.session() as s:
        for _ in range(2):
            await http.json_object(s, http.Call(operation, "GET", "/v1/things"))


async def test_an_adapters_operations_reuse_its_connection(server: CountingServer) -> None:
    adapter = http.Http("vercel", server.url, {"Authorization": "Bearer team-a-token"})

    for operation in ("plan", "rollback", "resume traffic"):
        await _operation(adapter, operation)

    assert server.connections == 1
    assert len(server.requests) == 6


async def test_adapters_on_one_host_share_its_connection_each_with_its_own_credentials(
    server: CountingServer,
) -> None:
    tokens = [f"Bearer team-{i}-token" for i in range(20)]
    for token in tokens:
        await _operation(http.Http("vercel", server.url, {"Authorization": token}), "plan")

    assert server.connections == 1
    assert [r["authorization"] for r in server.requests] == [t for t in tokens for _ in "ab"]


async def test_adapters_at_once_open_connections_as_needed_and_keep_them(
    server: CountingServer,
) -> None:
    adapters = [http.Http("railway", server.url, {"Authorization": f"t-{i}"}) for i in range(8)]
    await asyncio.gather(*(_operation(a, "plan") for a in adapters))
    opened = server.connections
    await asyncio.gather(*(_operation(a, "rollback") for a in adapters))

    assert 1 <= opened <= 8
    assert server.connections == opened


async def test_no_cookie_a_server_set_is_ever_sent_back(server: CountingServer) -> None:
    first = http.Http("railway", server.url, {"Project-Access-Token": "project-a"})
    second = http.Http("railway", server.url, {"Project-Access-Token": "project-b"})

    await _operation(first, "plan")
    await _operation(second, "plan")

    assert len(server.requests) == 4
    assert all("cookie" not in r for r in server.requests)


async def test_once_closed_the_next_operation_connects_again(server: CountingServer) -> None:
    endpoint = http.Http("slack", server.url, {})
    await _operation(endpoint, "notify")

    await http.close_pooled_clients()
    await _operation(endpoint, "notify")

    assert server.connections == 2


async def test_an_egress_proxy_named_in_the_environment_carries_provider_requests(
    server: CountingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: name hosts by sending the traffic through an egress proxy (`HTTPS_PROXY` in
    `extraEnv`); the server here plays the proxy, and the provider's host does not resolve."""
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    adapter = http.Http("railway", "http://backboard.railway.invalid", {"Authorization": "t"})

    await _operation(adapter, "plan")

    assert [r["host"] for r in server.requests] == ["backboard.railway.invalid"] * 2


async def test_a_host_in_no_proxy_is_reached_directly(
    server: CountingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    await _operation(http.Http("slack", server.url, {}), "notify")

    assert len(server.requests) == 2


async def test_the_shared_connections_send_and_read_what_httpxs_own_client_does(
    server: CountingServer,
) -> None:
    """The adapters' sessions skip httpx's client on the shared connections; on a transport of
    a caller's own they go through it. Both send the same request and read the same answer."""
    server.answer, server.encoding = gzip.compress('{"answered":"é"}'.encode()), "gzip"
    call = http.Call(
        "rollback", "POST", "/v1/projects/prj 1/rollback/dpl_é",
        params={"teamId": "team a/b&c=d", "since": "1"}, json={"description": "é/1", "n": None},
    )  # fmt: skip
    own = http.Options(transport=httpx.AsyncHTTPTransport())
    answers = []
    for options in (None, own):
        endpoint = http.Http("vercel", f"{server.url}/api/", {"Authorization": "Bearer t"}, options)
        async with endpoint.session() as s:
            answers.append(await http.json_object(s, call))

    assert answers == [{"answered": "é"}] * 2
    pooled, direct = server.requests
    assert server.lines[0] == server.lines[1]
    assert server.lines[0].startswith("POST /api/v1/projects/prj%201/rollback/dpl_%C3%A9?teamId")
    assert server.bodies[0] == server.bodies[1] == '{"description":"é/1","n":null}'.encode()
    for name in ("host", "user-agent", "accept", "content-type", "content-length", "authorization"):
        assert pooled[name] == direct[name], name
    assert {"gzip", "deflate"} <= set(pooled["accept-encoding"].split(", "))
    assert set(pooled["accept-encoding"].split(", ")) <= set(direct["accept-encoding"].split(", "))


async def test_a_callers_header_replaces_a_default_whatever_its_case(
    server: CountingServer,
) -> None:
    endpoint = http.Http("railway", server.url, {"accept": "application/json", "X-Token": "t"})
    async with endpoint.session() as s:
        await s.send(http.Call("plan", "GET", "/graphql"))

    (seen,) = server.requests
    assert seen["accept"] == "application/json"
    assert seen["x-token"] == "t"
