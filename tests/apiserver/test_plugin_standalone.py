"""The kubectl plugin without the operator's libraries: the zipapp krew installs runs on a bare
Python (no site-packages at all) against a real API server, as a kubectl plugin found on PATH,
and its krew manifest describes the archive the source builds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_operator import plugin_build
from sandbox import manifests
from tests.apiserver.server import KUBECTL, REPO_ROOT, KubeApiServer

CHECKED_IN = REPO_ROOT / "plugins" / "krew" / "rollback.yaml"


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The krew archive built from this source, unpacked as krew unpacks it."""
    where = tmp_path_factory.mktemp("krew")
    archive = where / "kubectl-rollback.tar.gz"
    archive.write_bytes(plugin_build.krew_archive(plugin_build.zipapp()))
    with tarfile.open(archive) as tar:
        tar.extractall(where / "plugin", filter="data")
    return where


def bare(app: Path, *args: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """The zipapp under this interpreter with no site-packages (-S) and no environment paths."""
    env = {"KUBECONFIG": str(kubeconfig), "PATH": os.environ["PATH"]}
    argv = [sys.executable, "-I", "-S", str(app), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def test_the_zipapp_lists_rollbacks_as_json_with_no_installed_packages(
    unpacked: Path, apiserver_with_crds: KubeApiServer, apiserver_namespace: str
) -> None:
    apiserver_with_crds.apply(manifests.rollback("rb-1", namespace=apiserver_namespace))
    app = unpacked / "plugin" / "kubectl-rollback"

    run = bare(app, "-n", apiserver_namespace, "list", "-o", "yaml",
               kubeconfig=apiserver_with_crds.admin_kubeconfig)  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert [i["metadata"]["name"] for i in yaml.safe_load(run.stdout)["items"]] == ["rb-1"]


def test_candidates_in_the_zipapp_says_what_to_install(
    unpacked: Path, apiserver_with_crds: KubeApiServer, apiserver_namespace: str
) -> None:
    app = unpacked / "plugin" / "kubectl-rollback"

    run = bare(app, "-n", apiserver_namespace, "candidates", "mindmate",
               kubeconfig=apiserver_with_crds.admin_kubeconfig)  # fmt: skip

    assert run.returncode == 1
    assert "needs the operator's libraries" in run.stderr
    assert "pip install rollback-operator" in run.stderr


def test_kubectl_finds_the_unpacked_plugin_on_path(
    unpacked: Path, apiserver_with_crds: KubeApiServer, apiserver_namespace: str
) -> None:
    app = unpacked / "plugin" / "kubectl-rollback"
    assert os.access(app, os.X_OK)
    python_dir = Path(sys.executable).parent  # the shebang's python3; this one is >= 3.11
    env = {"KUBECONFIG": str(apiserver_with_crds.admin_kubeconfig),
           "PATH": f"{app.parent}{os.pathsep}{python_dir}{os.pathsep}/usr/bin:/bin"}  # fmt: skip
    assert KUBECTL is not None

    run = subprocess.run(
        [KUBECTL, "rollback", "-n", apiserver_namespace, "policy", "list", "-o", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["items"] == []


def test_the_build_is_reproducible_and_the_manifest_names_its_sha256(unpacked: Path) -> None:
    archive = (unpacked / "kubectl-rollback.tar.gz").read_bytes()
    again = plugin_build.krew_archive(plugin_build.zipapp())
    platform = _platform(plugin_build.manifest(archive))

    assert again == archive
    assert platform["sha256"] == hashlib.sha256(archive).hexdigest()
    assert platform["bin"] == "kubectl-rollback"
    assert {f["from"] for f in platform["files"]} == {"kubectl-rollback", "LICENSE"}
    assert (unpacked / "plugin" / "LICENSE").is_file()


def test_the_checked_in_krew_manifest_is_the_generated_one_but_for_the_release_sha256() -> None:
    checked_in = yaml.safe_load(CHECKED_IN.read_text())
    fresh = plugin_build.manifest(b"")
    for manifest in (checked_in, fresh):
        _platform(manifest).pop("sha256")

    assert checked_in == fresh, "regenerate it: make krew"


def _platform(manifest: dict[str, Any]) -> dict[str, Any]:
    platforms: list[dict[str, Any]] = manifest["spec"]["platforms"]
    assert len(platforms) == 1
    return platforms[0]
