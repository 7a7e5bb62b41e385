"""Registers the real API server's fixtures for this folder (other folders: tests/conftest.py)."""

from tests.apiserver.fixtures import apiserver, apiserver_namespace

__all__ = ["apiserver", "apiserver_namespace"]
