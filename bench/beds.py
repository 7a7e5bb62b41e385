"""The Kubernetes API a benchmark runs the operator on: the real API server, or the emulator.

Why this module exists: the suites run on the real kube-apiserver (`tests/apiserver`), and the
benchmarks report figures on it beside those of the emulator the demo embeds, so each
benchmark takes `--bed apiserver|emulator` and opens its `Bed` here. On the real server the
bed is a fresh namespace with the CRDs installed; on the emulator it is the `default`
namespace of a fresh emulator process, with the CRDs applied.

    with beds.opened("apiserver", tmp) as bed:
        bed.start()
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from sandbox.kube.cluster import EmulatedCluster
from tests.apiserver.fixtures import install_crds
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import REPO_ROOT, KubeApiServer
from tests.e2e.bed import Bed

KINDS = ("apiserver", "emulator")
START_TIMEOUT = 120.0
"""Seconds an operator may take to open its watches: tests wait 30, a loaded machine needs more."""


class EmulatedNamespace:
    """The emulator's `default` namespace, as a `tests.e2e.bed.Kube`."""

    namespace = "default"

    def __init__(self, cluster: EmulatedCluster) -> None:
        self.emulator = cluster

    @property
    def kubeconfig(self) -> Path:
        return self.emulator.kubeconfig

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return self.emulator.kubectl(*args, check=check, stdin=stdin, timeout=timeout)

    def kubectl_argv(self, *args: str) -> list[str]:
        return self.emulator.kubectl_argv(*args)

    def apply_file(self, path: Path | str) -> subprocess.CompletedProcess[str]:
        return self.emulator.apply_file(path)

    def wait_for_watch(
        self, resource: str, *, namespace: str | None = None, timeout: float = 10.0
    ) -> None:
        self.emulator.wait_for_watch(resource, namespace=namespace, timeout=timeout)

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.emulator.url, timeout=timeout)


@contextmanager
def opened(kind: str, workdir: Path) -> Iterator[Bed]:
    """A bed on `kind` ("apiserver" or "emulator"), its API stopped when the block ends."""
    if kind == "apiserver":
        with KubeApiServer(users=()) as server:
            install_crds(server)
            yield Bed(KubeNamespace(server, workdir / "kube"), workdir)
    elif kind == "emulator":
        with EmulatedCluster(workdir / "cluster") as cluster:
            for crd in sorted((REPO_ROOT / "crds").glob("*.yaml")):
                cluster.apply_file(crd)
            yield Bed(EmulatedNamespace(cluster), workdir)
    else:
        raise ValueError(f"no bed {kind!r}; one of {KINDS}")


def api_pids(bed: Bed) -> list[int]:
    """The processes serving the bed's API (etcd and kube-apiserver, or the emulator), for
    CPU figures."""
    cluster = bed.cluster
    if isinstance(cluster, KubeNamespace):
        return cluster.server.pids
    assert isinstance(cluster, EmulatedNamespace)
    marker = str(cluster.emulator.workdir / "emulator.port").encode()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes():
                return [int(proc.name)]
        except OSError:
            continue
    return []
