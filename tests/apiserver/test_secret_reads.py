"""The operator's SecretReader against a real API server: what it returns for a Secret key.

Secret values are read in one place (`KubeApi.read`), so whitespace around a token (the newline
`kubectl create secret --from-file` keeps from `echo token > file`) is stripped there once for
every adapter, notifier and data store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from bench import apicalls
from rollback_operator.kube import KubeApi
from rollback_operator.providers.errors import NotFoundError, PermanentError
from sandbox import manifests
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import KubeApiServer


@pytest.fixture
def kube(apiserver: KubeApiServer, tmp_path: Path) -> KubeNamespace:
    namespace = KubeNamespace(apiserver, tmp_path / "kube")
    secret = manifests.secret(
        "tokens",
        {"newline": "vercel-token-7f3a\n", "padded": "  railway-token-42c9 \r\n", "plain": "pw-1"},
        namespace=namespace.namespace,
    )
    namespace.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(secret))
    return namespace


async def test_a_secret_value_is_read_without_surrounding_whitespace(kube: KubeNamespace) -> None:
    api = await KubeApi.connect(str(kube.kubeconfig))
    try:
        read = [await api.read(kube.namespace, "tokens", k) for k in ("newline", "padded", "plain")]
    finally:
        await api.close()
    assert read == ["vercel-token-7f3a", "railway-token-42c9", "pw-1"]


async def test_a_missing_secret_or_key_is_named_in_the_error(kube: KubeNamespace) -> None:
    api = await KubeApi.connect(str(kube.kubeconfig))
    try:
        no_key = rf"Secret {kube.namespace}/tokens has no key 'other'"
        with pytest.raises(PermanentError, match=no_key):
            await api.read(kube.namespace, "tokens", "other")
        with pytest.raises(NotFoundError, match=rf"Secret {kube.namespace}/absent not found"):
            await api.read(kube.namespace, "absent", "token")
    finally:
        await api.close()


def _secret_gets(kube: KubeNamespace) -> int:
    """GETs of Secrets the server has served so far (its own request counter)."""
    with kube.client() as client:
        return sum(n for k, n in apicalls.read(client).items() if k[:2] == ("GET", "secrets"))


async def test_reads_of_one_secret_at_the_same_moment_ask_the_server_once(
    kube: KubeNamespace,
) -> None:
    """A burst of rollbacks whose policies share credentials: each Secret is read once."""
    api = await KubeApi.connect(str(kube.kubeconfig))
    before = _secret_gets(kube)
    try:
        keys = ["newline", "padded", "plain"] * 10
        read = await asyncio.gather(*(api.read(kube.namespace, "tokens", k) for k in keys))
    finally:
        await api.close()
    assert _secret_gets(kube) - before == 1
    assert read[:3] == ["vercel-token-7f3a", "railway-token-42c9", "pw-1"]


async def test_a_changed_secret_is_read_again_once_the_last_read_is_older_than_its_ttl(
    kube: KubeNamespace,
) -> None:
    api = await KubeApi.connect(str(kube.kubeconfig), secret_ttl=0.5)
    try:
        assert await api.read(kube.namespace, "tokens", "plain") == "pw-1"
        changed = manifests.secret("tokens", {"plain": "pw-2"}, namespace=kube.namespace)
        kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(changed))
        assert await api.read(kube.namespace, "tokens", "plain") == "pw-1"  # within the ttl
        await asyncio.sleep(0.6)
        assert await api.read(kube.namespace, "tokens", "plain") == "pw-2"
    finally:
        await api.close()


async def test_a_failed_read_is_not_kept(kube: KubeNamespace) -> None:
    api = await KubeApi.connect(str(kube.kubeconfig))
    try:
        with pytest.raises(NotFoundError):
            await api.read(kube.namespace, "late", "token")
        late = manifests.secret("late", {"token": "t-1"}, namespace=kube.namespace)
        kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(late))
        assert await api.read(kube.namespace, "late", "token") == "t-1"
    finally:
        await api.close()
