"""The deployment log ConfigMap on the real API server: lines added by key, the same key once,
the newest kept, and a ConfigMap without the log's mark never written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_operator.kube import LOG_MARK, KubeApi
from rollback_operator.providers.errors import PermanentError
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import KubeApiServer

LOG = "rollback-deployment-log"


@pytest.fixture
def kube(apiserver: KubeApiServer, tmp_path: Path) -> KubeNamespace:
    return KubeNamespace(apiserver, tmp_path / "kube")


def _data(kube: KubeNamespace) -> dict[str, str]:
    found: dict[str, Any] = json.loads(kube.kubectl("get", "configmap", LOG, "-o", "json").stdout)
    data: dict[str, str] = found["data"]
    return data


async def test_lines_are_added_once_each_and_only_the_newest_kept(kube: KubeNamespace) -> None:
    api = await KubeApi.connect(str(kube.kubeconfig))
    try:
        for n in range(1, 6):
            await api.add_log_line(kube.namespace, LOG, f"2026120{n}T000000Z.rb-{n}", f"line {n}",
                                   keep=3)  # fmt: skip
        await api.add_log_line(kube.namespace, LOG, "20261205T000000Z.rb-5", "line 5", keep=3)
    finally:
        await api.close()

    assert _data(kube) == {
        "20261203T000000Z.rb-3": "line 3",
        "20261204T000000Z.rb-4": "line 4",
        "20261205T000000Z.rb-5": "line 5",
    }


async def test_a_configmap_without_the_mark_is_refused_and_unchanged(kube: KubeNamespace) -> None:
    theirs = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"notes": "mine"},
              "metadata": {"name": LOG, "namespace": kube.namespace,
                           "annotations": {LOG_MARK: "yes"}}}  # fmt: skip
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(theirs))
    api = await KubeApi.connect(str(kube.kubeconfig))
    try:
        with pytest.raises(PermanentError, match="is not the operator's deployment log"):
            await api.add_log_line(kube.namespace, LOG, "20261201T000000Z.rb-1", "line 1")
    finally:
        await api.close()

    assert _data(kube) == {"notes": "mine"}


def _refused_creates(kube: KubeNamespace) -> int:
    """ConfigMap creates the server refused as existing (409), as it counts them itself."""
    with kube.client() as api:
        text = api.get("/metrics").raise_for_status().text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("apiserver_request_total{")
        and all(f'{k}="{v}"' in line for k, v in
                {"code": "409", "resource": "configmaps", "verb": "POST"}.items())
    )  # fmt: skip


async def test_a_line_added_to_the_log_is_one_write_once_the_log_exists(
    kube: KubeNamespace,
) -> None:
    api = await KubeApi.connect(str(kube.kubeconfig))
    try:
        await api.add_log_line(kube.namespace, LOG, "20261201T000000Z.rb-1", "line 1")
        refused = _refused_creates(kube)
        for n in range(2, 5):
            await api.add_log_line(kube.namespace, LOG, f"2026120{n}T000000Z.rb-{n}", f"line {n}")
    finally:
        await api.close()

    assert _refused_creates(kube) == refused  # each was a patch alone, no create tried first
    assert len(_data(kube)) == 4
