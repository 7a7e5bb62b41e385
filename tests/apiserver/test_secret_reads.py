"""The operator's SecretReader against a real API server: what it returns for a Secret key.

Secret values are read in one place (`KubeApi.read`), so whitespace around a token (the newline
`kubectl create secret --from-file` keeps from `echo token > file`) is stripped there once for
every adapter, notifier and data store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
