"""Fixtures shared by every test folder."""

from tests.kube.fixtures import cluster, kube_emulator, session_cluster

__all__ = ["cluster", "kube_emulator", "session_cluster"]
