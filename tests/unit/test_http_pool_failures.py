"""What a failed attempt on the shared connections means, told as before: a request that never
reached a server (nobody listening, no connection in time) is resent even when it changes
something; one a server may have acted on (it took the request and hung up, or never answered)
is resent only when it is safe to.

The servers here are plain sockets, so each failure is exactly the one named.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from rollback_operator.providers import errors, http

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]
FAST = http.Options(
    retry=http.RequestRetries(attempts=3, base_delay=0.01, max_delay=0.01, budget=5.0),
    timeouts=httpx.Timeout(connect=0.5, read=0.3, write=0.5, pool=0.5),
)
MUTATION = http.Call("rollback", "POST", "/v1/rollback", json={"to": "dpl_1"}, idempotent=False)


@pytest.fixture(autouse=True)
async def closed_afterwards() -> AsyncIterator[None]:
    yield
    await http.close_pooled_clients()


async def _listening(handler: Handler) -> tuple[asyncio.Server, list[int]]:
    """A server running `handler` per connection, and a list counting the requests it read."""
    requests: list[int] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        requests.append(1)
        await handler(reader, writer)

    return await asyncio.start_server(counted, "127.0.0.1", 0), requests


def _url(server: asyncio.Server) -> str:
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _send(url: str, call: http.Call) -> errors.ProviderError:
    endpoint = http.Http("vercel", url, {"Authorization": "Bearer t"}, FAST)
    async with endpoint.session() as s:
        with pytest.raises(errors.ProviderError) as raised:
            await s.send(call)
    return raised.value


async def test_a_change_nobody_received_is_sent_again() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed when the test sends: nobody listens there

    failed = await _send(f"http://127.0.0.1:{port}", MUTATION)

    assert isinstance(failed, errors.RetryableError)
    assert "connection failed (ConnectError)" in str(failed)
    assert "gave up after 3 attempts" in str(failed)


async def test_a_change_a_server_took_and_hung_up_on_is_not_sent_again() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server, requests = await _listening(hang_up)
    async with server:
        failed = await _send(_url(server), MUTATION)

    assert requests == [1]
    assert "connection failed (RemoteProtocolError)" in str(failed)
    assert "gave up" not in str(failed)


async def test_an_answer_that_never_comes_times_out_and_a_read_is_asked_again() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server, requests = await _listening(silent)
    async with server:
        failed = await _send(_url(server), http.Call("plan", "GET", "/v9/projects/p"))
        mutation = await _send(_url(server), MUTATION)

    assert "timed out (ReadTimeout)" in str(failed)
    assert "gave up after 3 attempts" in str(failed)
    assert "timed out (ReadTimeout)" in str(mutation)
    assert "gave up" not in str(mutation)
    assert requests == [1, 1, 1, 1]
