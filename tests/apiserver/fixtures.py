"""Pytest fixtures for the real API server, for ``tests/conftest.py`` to register.

``apiserver`` is one etcd plus kube-apiserver for the whole run (a few seconds to start; the
binaries come from ``scripts/kube-env.sh``, which builds them when this machine has none: a
missing binary is built, never skipped). Tests share it, so each takes its own namespace from
``apiserver_namespace`` and names cluster-scoped objects uniquely.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.apiserver.server import KubeApiServer


@pytest.fixture(scope="session")
def apiserver() -> Iterator[KubeApiServer]:
    """A real kube-apiserver on etcd for the whole run, with static users alice and bob."""
    with KubeApiServer(users=("alice", "bob")) as server:
        yield server


@pytest.fixture
def apiserver_namespace(apiserver: KubeApiServer) -> str:
    """A new namespace for one test (left behind: without a controller-manager, namespaces
    never finish deleting)."""
    name = f"test-{secrets.token_hex(4)}"
    apiserver.kubectl("create", "namespace", name)
    return name
