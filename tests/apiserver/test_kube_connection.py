"""How the operator's own client (`KubeApi`) reaches a real API server.

kopf's connection (watches, its own patches, Events) never reads proxy variables or ~/.netrc
(its `trust_env` is off). The operator's own calls (status patches, Secrets, ConfigMaps) go the
same way, straight to the server of the kubeconfig: a client that trusts the environment looks
for a netrc entry and a proxy in two worker threads before every request.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from rollback_operator.kube import KubeApi
from sandbox import manifests
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import KubeApiServer


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_proxy_variables_do_not_divert_the_operators_own_calls(
    apiserver: KubeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = KubeNamespace(apiserver, tmp_path / "kube")
    secret = manifests.secret("tokens", {"plain": "pw-1"}, namespace=kube.namespace)
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(secret))
    dead_proxy = f"http://127.0.0.1:{_closed_port()}"
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    api = await KubeApi.connect(str(kube.kubeconfig))
    try:
        assert await api.read(kube.namespace, "tokens", "plain") == "pw-1"
    finally:
        await api.close()
