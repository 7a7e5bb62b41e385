"""Pytest fixtures for the real API server, for ``tests/conftest.py`` to register.

``apiserver`` is one etcd plus kube-apiserver for the whole run (a few seconds to start; the
binaries come from ``scripts/kube-env.sh``, which builds them when this machine has none: a
missing binary is built, never skipped). Tests share it, so each takes its own namespace from
``apiserver_namespace`` (or a ``KubeNamespace`` through a test bed) and names cluster-scoped
objects uniquely. ``apiserver_with_crds`` is the same server once the project's CRDs are
established. A test that changes cluster-wide state (CRDs, a Helm release that owns them)
takes ``fresh_apiserver``, a server of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.apiserver.server import REPO_ROOT, KubeApiServer

CRDS = sorted((REPO_ROOT / "crds").glob("*.yaml"))


@pytest.fixture(scope="session")
def apiserver() -> Iterator[KubeApiServer]:
    """A real kube-apiserver on etcd for the whole run, with static users alice and bob."""
    with KubeApiServer(users=("alice", "bob")) as server:
        yield server


@pytest.fixture(scope="session")
def apiserver_with_crds(apiserver: KubeApiServer) -> KubeApiServer:
    """The session's server with the CRDs of `crds/` installed and established."""
    install_crds(apiserver)
    return apiserver


@pytest.fixture
def fresh_apiserver(apiserver: KubeApiServer) -> Iterator[KubeApiServer]:
    """A server of the test's own (about 4 s more), with no CRD installed."""
    with KubeApiServer(users=("alice",), bin_dir=apiserver.bin_dir) as server:
        yield server


@pytest.fixture
def apiserver_namespace(apiserver: KubeApiServer) -> str:
    """A new namespace for one test (left behind: without a controller-manager, namespaces
    never finish deleting)."""
    name = f"test-{secrets.token_hex(4)}"
    apiserver.kubectl("create", "namespace", name)
    return name


def install_crds(server: KubeApiServer) -> None:
    """Apply the CRDs of `crds/` and wait until the server serves them."""
    server.kubectl("apply", "--server-side", *(arg for p in CRDS for arg in ("-f", str(p))))
    names = [f"crd/{p.name.removesuffix('.yaml')}" for p in CRDS]
    server.kubectl("wait", "--for=condition=Established", "--timeout=30s", *names)
