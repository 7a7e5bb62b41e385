"""Fixtures shared by every test folder."""

from tests.kube.fixtures import cluster, kube_emulator, session_cluster
from tests.services.fixtures import pg_server, s3, s3_server

__all__ = ["cluster", "kube_emulator", "pg_server", "s3", "s3_server", "session_cluster"]
