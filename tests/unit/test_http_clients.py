"""Adapter HTTP clients share one TLS context, which still verifies the servers it talks to."""

from __future__ import annotations

import ssl

import httpx
import pytest

from rollback_operator.providers import http


def test_clients_load_the_ca_bundle_once_for_the_whole_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[ssl.SSLContext] = []
    original = httpx.create_ssl_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(original())
        return made[-1]

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    http.tls_context.cache_clear()
    try:
        clients = [http.make_client(f"https://api{i}.example", {}) for i in range(3)]
    finally:
        http.tls_context.cache_clear()

    assert len(made) == 1
    assert len(clients) == 3


def test_the_shared_context_verifies_certificates_and_host_names() -> None:
    context = http.tls_context()

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.cert_store_stats()["x509_ca"] > 0
