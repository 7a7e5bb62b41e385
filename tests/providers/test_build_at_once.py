"""A policy's adapters are built at the same time, and a failure is reported in runbook order.

Each adapter reads its own Secret from the API server before a rollback can plan, so a
rollback's start waited for those reads one after another (Vercel's token, then Railway's, then
Slack's webhook). `RealProviderFactory` now reads them together; which error it reports when
several Secrets are missing is the one of the first layer, as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers import registry
from rollback_operator.providers.errors import PermanentError
from sandbox import manifests
from tests.providers.conftest import FAKES

TARGETS = {
    "frontend": {"vercel": {"projectId": "prj_1", "apiUrl": "http://127.0.0.1:1"}},
    "backend": {"railway": {"projectId": "p-1", "environmentId": "e-1", "serviceId": "s-1",
                            "apiUrl": "http://127.0.0.1:1/graphql/v2"}},
    "database": None,
    "storage": None,
}  # fmt: skip
SLACK = {"slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}}


def _policy() -> RollbackPolicy:
    body = manifests.policy(namespace="prod", targets=TARGETS, notifications=SLACK)
    return RollbackPolicy.model_validate({**body, "objectStore": None})


class WaitingSecrets:
    """Answers a read only once every Secret in `together` has been asked for."""

    def __init__(self, together: set[str], missing: dict[str, float] | None = None) -> None:
        self.together, self.asked = together, set[str]()
        self.missing = missing or {}  # name -> seconds before it is found missing
        self.all_asked = asyncio.Event()

    async def read(self, namespace: str, name: str, key: str) -> str:
        self.asked.add(name)
        if self.together <= self.asked:
            self.all_asked.set()
        if name in self.missing:
            await asyncio.sleep(self.missing[name])
            raise PermanentError(f"Secret {namespace}/{name} not found", provider="kubernetes")
        await self.all_asked.wait()
        return "http://127.0.0.1:1/services/T0/B0/x" if name == "slack" else f"{name}-token"


async def test_the_adapters_secrets_are_read_at_the_same_time() -> None:
    secrets = WaitingSecrets({"vercel", "railway", "slack"})
    built = await asyncio.wait_for(
        registry.RealProviderFactory(FAKES).build(_policy(), secrets), 2.0
    )
    assert built.frontend is not None
    assert built.backend is not None
    assert [n.name for n in built.notifiers] == ["slack"]


async def test_the_first_layers_error_is_reported_when_a_later_one_fails_first() -> None:
    secrets: Any = WaitingSecrets(set(), missing={"vercel": 0.05, "railway": 0.0})
    with pytest.raises(PermanentError, match="Secret prod/vercel not found"):
        await registry.RealProviderFactory(FAKES).build(_policy(), secrets)
