"""Fixtures shared by every test folder."""

from tests.apiserver.fixtures import (
    apiserver,
    apiserver_namespace,
    apiserver_with_crds,
    fresh_apiserver,
)
from tests.e2e.bed import bed
from tests.kube.fixtures import cluster, kube_emulator, session_cluster
from tests.services.fixtures import pg_server, prometheus, s3, s3_server

pytest_plugins = ["tests.leakscan"]  # fails the run if a test secret leaks anywhere readable

__all__ = [
    "apiserver",
    "apiserver_namespace",
    "apiserver_with_crds",
    "bed",
    "cluster",
    "fresh_apiserver",
    "kube_emulator",
    "pg_server",
    "prometheus",
    "s3",
    "s3_server",
    "session_cluster",
]
