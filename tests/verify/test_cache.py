"""The cache check against a real redis-server: PONG, wrong password, nothing listening."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers.verification import checklist
from rollback_operator.providers.verification.checklist import FunctionCheck, ping
from sandbox import manifests
from sandbox.services.redis import PASSWORD, RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


async def test_cache_check_passes_when_redis_answers_ping(redis_server: RedisServer) -> None:
    result = await FunctionCheck("cache", lambda: ping(redis_server.url)).run()
    assert result.passed
    assert result.message.startswith("PONG in ")


async def test_wrong_password_fails_without_showing_the_url(redis_server: RedisServer) -> None:
    url = redis_server.url.replace(PASSWORD, "wrong-password-1234")
    result = await FunctionCheck("cache", lambda: ping(url)).run()
    assert not result.passed
    assert "wrong-password-1234" not in result.message
    assert result.message.startswith("cache did not answer PING: ")


async def test_nothing_listening_fails_the_check() -> None:
    result = await FunctionCheck("cache", lambda: ping("redis://127.0.0.1:9/0")).run()
    assert not result.passed
    assert result.message == "cache did not answer PING: ConnectionError"


class _Secrets:
    def __init__(self, url: str) -> None:
        self.url = url
        self.reads: list[tuple[str, str, str]] = []

    async def read(self, namespace: str, name: str, key: str) -> str:
        self.reads.append((namespace, name, key))
        return self.url


async def test_policy_cache_check_reads_its_secret_and_joins_the_checklist(
    redis_server: RedisServer,
) -> None:
    manifest = manifests.policy(
        verification={"cache": {"urlSecretRef": {"name": "cache", "key": "url"}}}
    )
    secrets = _Secrets(redis_server.url)
    built = await checklist.build(RollbackPolicy.model_validate(manifest), secrets)
    assert built is not None
    assert [c.name for c in built.checks] == ["cache"]
    assert secrets.reads == [("default", "cache", "url")]
    (result,) = await built.verify()
    assert result.passed
