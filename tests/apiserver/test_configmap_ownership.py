"""The operator writes only ConfigMaps it created: a report never overwrites someone's ConfigMap.

The report of Rollback NAME goes to ConfigMap `NAME-report`. A ConfigMap of that name that the
operator did not create for this Rollback (no ownerReference to the Rollback's uid) may be
anything: an app's configuration, another tool's record. `KubeApi.upsert_config_map` refuses
to patch it and says why; the real operator process fails the report step with that message
and a Warning Event, and leaves the ConfigMap exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_operator.kube import KubeApi
from rollback_operator.providers.errors import PermanentError
from sandbox import manifests
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import KubeApiServer
from tests.e2e.bed import Bed, open_bed

THEIRS = {"app.conf": "feature_flags=on\n"}


def _config_map(name: str, namespace: str, **metadata: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace, **metadata}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": THEIRS}


def _owner(name: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": "rollback.mindmate.app/v1alpha1", "kind": "Rollback", "name": name,
            "uid": uid, "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def _read(kube: KubeNamespace, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kube.kubectl("get", "configmap", name, "-o", "json").stdout)
    return found


@pytest.fixture
def kube(apiserver: KubeApiServer, tmp_path: Path) -> KubeNamespace:
    return KubeNamespace(apiserver, tmp_path / "kube")


async def test_a_configmap_the_operator_did_not_create_is_never_patched(
    kube: KubeNamespace,
) -> None:
    theirs = _config_map("rb-1-report", kube.namespace)
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(theirs))
    before = _read(kube, "rb-1-report")
    api = await KubeApi.connect(str(kube.kubeconfig))
    try:
        with pytest.raises(PermanentError, match="was not created by the operator") as refused:
            await api.upsert_config_map(
                kube.namespace, "rb-1-report", {"report.md": "# ours"}, _owner("rb-1", "uid-1")
            )
    finally:
        await api.close()
    assert f"ConfigMap {kube.namespace}/rb-1-report" in str(refused.value)
    assert "left unchanged" in str(refused.value)
    after = _read(kube, "rb-1-report")
    assert after["data"] == THEIRS
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_a_configmap_owned_by_another_rollback_is_never_patched(
    kube: KubeNamespace,
) -> None:
    other = _config_map("rb-2-report", kube.namespace, ownerReferences=[_owner("rb-2", "old")])
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(other))
    api = await KubeApi.connect(str(kube.kubeconfig))
    try:
        with pytest.raises(PermanentError, match="was not created by the operator"):
            await api.upsert_config_map(
                kube.namespace, "rb-2-report", {"report.md": "# ours"}, _owner("rb-2", "new")
            )
    finally:
        await api.close()
    assert _read(kube, "rb-2-report")["data"] == THEIRS


async def test_the_operators_own_configmap_is_created_then_updated(kube: KubeNamespace) -> None:
    api = await KubeApi.connect(str(kube.kubeconfig))
    owner = _owner("rb-3", "uid-3")
    try:
        await api.upsert_config_map(kube.namespace, "rb-3-report", {"report.md": "one"}, owner)
        await api.upsert_config_map(kube.namespace, "rb-3-report", {"report.md": "two"}, owner)
    finally:
        await api.close()
    stored = _read(kube, "rb-3-report")
    assert stored["data"] == {"report.md": "two"}
    assert stored["metadata"]["ownerReferences"] == [owner]


@pytest.fixture
def bed(apiserver_with_crds: KubeApiServer, tmp_path: Path) -> Iterator[Bed]:
    yield from open_bed(Bed, apiserver_with_crds, tmp_path)


@pytest.mark.e2e
def test_the_operator_fails_the_report_step_and_leaves_a_foreign_configmap_alone(
    bed: Bed,
) -> None:
    theirs = _config_map("mine-report", bed.namespace)
    bed.cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(theirs))
    before = bed.get("configmap", "mine-report")
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("mine"))
    done = bed.wait_for("mine", {"Succeeded", "PartiallyFailed", "Failed"})
    report = next(s for s in done["status"]["steps"] if s["name"] == "report")
    assert report["state"] == "Failed"
    assert "was not created by the operator" in report["message"]
    assert "reportRef" not in done["status"]
    failed = [e for e in bed.events_for("mine") if e["reason"] == "StepFailed"]
    assert len(failed) == 1
    assert failed[0]["type"] == "Warning"
    assert f"ConfigMap {bed.namespace}/mine-report" in failed[0]["message"]
    after = bed.get("configmap", "mine-report")
    assert after["data"] == THEIRS
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "ownerReferences" not in after["metadata"]
