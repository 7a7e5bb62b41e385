"""`helm install`, `upgrade` and `uninstall` of the chart, by the real helm on a real API server.

Each test takes a server of its own (`fresh_apiserver`): a release owns the CRDs, which are
cluster-wide. No kubelet runs, so the operator's pod never starts; every object is real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import manifests
from tests.apiserver.server import REPO_ROOT, KubeApiServer
from tests.chart import helm

pytestmark = pytest.mark.e2e
ROLLBACKS_CRD = "rollbacks.rollback.mindmate.app"
NEW_COLUMN = {"name": "Approved-By", "type": "string", "jsonPath": ".status.approvedBy"}


def _get(server: KubeApiServer, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(server.kubectl("get", *args, "-o", "json").stdout)
    return found


def _exists(server: KubeApiServer, kind: str, name: str, namespace: str | None) -> bool:
    where = ["-n", namespace] if namespace else []
    what = [kind, name] if name else [kind]
    return server.kubectl("get", *what, *where, check=False).returncode == 0


def _chart_with_a_new_column(workdir: Path) -> Path:
    """A copy of the chart, one version later, whose Rollback CRD has one more printer column."""
    chart = workdir / "rollback-operator"
    shutil.copytree(helm.CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = f"{meta['version']}-next"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    path = chart / "files" / "crds" / f"{ROLLBACKS_CRD}.yaml"
    crd = yaml.safe_load(path.read_text())
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(NEW_COLUMN)
    path.write_text(yaml.safe_dump(crd))
    return chart


def test_install_creates_every_object_and_the_crds_are_served(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    rendered = helm.install(fresh_apiserver, {}, tmp_path)

    for doc in rendered.docs:
        namespace = doc["metadata"].get("namespace", helm.NAMESPACE)
        scoped = doc["kind"] not in {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering",
                                     "CustomResourceDefinition"}  # fmt: skip
        assert _exists(fresh_apiserver, doc["kind"], doc["metadata"]["name"],
                       namespace if scoped else None), doc["kind"]  # fmt: skip
    names = [f"crd/{c['metadata']['name']}" for c in rendered.of_kind("CustomResourceDefinition")]
    assert len(names) == len(list((REPO_ROOT / "crds").glob("*.yaml")))
    fresh_apiserver.kubectl("wait", "--for=condition=Established", "--timeout=30s", *names)
    for peering in helm.peering_crds():  # from crds/, installed before the templates
        assert _exists(fresh_apiserver, "crd", peering["metadata"]["name"], None)


def test_upgrade_to_a_chart_whose_crd_changed_updates_the_crd(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    helm.install(fresh_apiserver, {}, tmp_path)
    before = _get(fresh_apiserver, "crd", ROLLBACKS_CRD)["spec"]["versions"][0]
    assert NEW_COLUMN not in before["additionalPrinterColumns"]

    helm.upgrade(fresh_apiserver, {}, tmp_path, chart=_chart_with_a_new_column(tmp_path))

    after = _get(fresh_apiserver, "crd", ROLLBACKS_CRD)["spec"]["versions"][0]
    assert after["additionalPrinterColumns"] == [*before["additionalPrinterColumns"], NEW_COLUMN]
    table = fresh_apiserver.kubectl("get", "rollbacks", "-A").stderr
    assert "No resources found" in table  # served under the new definition


def test_uninstall_keeps_the_crds_and_every_rollback(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    rendered = helm.install(fresh_apiserver, {}, tmp_path)
    fresh_apiserver.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}})
    fresh_apiserver.apply(manifests.policy(namespace="prod"), manifests.rollback(namespace="prod"))

    report = helm.uninstall(fresh_apiserver)

    assert "kept due to the resource policy" in report, report
    for crd in rendered.of_kind("CustomResourceDefinition"):
        assert _exists(fresh_apiserver, "crd", crd["metadata"]["name"], None)
    assert _exists(fresh_apiserver, "rollback/rb-1", "", "prod")  # `get rollback NAME` would
    assert _exists(fresh_apiserver, "rollbackpolicy/mindmate", "", "prod")  # be the category
    assert not _exists(fresh_apiserver, "deployment", "rollback-operator", helm.NAMESPACE)
    assert not _exists(fresh_apiserver, "clusterrole", "rollback-operator", None)


def test_crds_installed_without_helm_are_adopted_once_labelled_as_the_readme_says(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    crds = ["crd/rollbacks.rollback.mindmate.app", "crd/rollbackpolicies.rollback.mindmate.app"]
    old = [REPO_ROOT / "crds" / f"{crd.removeprefix('crd/')}.yaml" for crd in crds]
    fresh_apiserver.kubectl("apply", "--server-side", *(a for p in old for a in ("-f", str(p))))
    fresh_apiserver.kubectl("wait", "--for=condition=Established", "--timeout=30s", *crds)
    # as chart 0.1.0 left its two CRDs: from crds/, owned by no release
    with pytest.raises(helm.HelmError, match="invalid ownership metadata"):
        helm.install(fresh_apiserver, {}, tmp_path)
    fresh_apiserver.kubectl("label", *crds, "app.kubernetes.io/managed-by=Helm")
    fresh_apiserver.kubectl("annotate", *crds, f"meta.helm.sh/release-name={helm.RELEASE}",
                            f"meta.helm.sh/release-namespace={helm.NAMESPACE}")  # fmt: skip

    helm.install(fresh_apiserver, {}, tmp_path)

    crd = _get(fresh_apiserver, "crd", ROLLBACKS_CRD)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
