"""Notifiers with a transport of their own still share the process's one TLS context.

Slack's and Statuspage's adapters wrap httpx's transport (to hide the webhook URL, to reshape
error bodies). httpx's transport made with its defaults loads the CA bundle again: about 30 ms
of CPU per notice, a quarter of the operator's CPU while 100 rollbacks each told Slack twice
(docs/benchmarks.md). Both use `http.tls_context()`, made once per process.
"""

from __future__ import annotations

import ssl

import pytest

from rollback_operator.providers import http
from tests.notify.conftest import send, serve


@pytest.mark.parametrize("name", ["slack", "statuspage"])
async def test_notices_load_the_ca_bundle_at_most_once(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[ssl.SSLContext] = []
    original = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(original(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    http.tls_context.cache_clear()
    try:
        for harness in serve(name):
            for n, kind in enumerate(["started", "finished", "started"]):
                await send(harness.notifier(), kind, "succeeded", name=f"rollback-{n}")
            assert len(harness.effects()) == 3
    finally:
        http.tls_context.cache_clear()
    assert len(made) <= 1
