"""Planning reads the frontend and the backend at the same time, and fails in runbook order.

A plan is read from each target's provider before a rollback starts (and again at its turn
when it waited), so the start waits for it: read one after another, a quick rollback waited for
the frontend's API and then for the backend's; read together, for the slower of the two.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from rollback_operator.api.rollback import DeploymentPlan, Rollback
from rollback_operator.providers.base import DeploymentTarget, Providers
from rollback_operator.providers.errors import PermanentError, ProviderError
from rollback_operator.reconcile.planner import make_plan
from sandbox import manifests

NOW = datetime(2026, 12, 7, tzinfo=UTC)


class Reads:
    """A target whose plan is `to`, ready once `ready` is set; it sets `sets` when asked."""

    def __init__(self, to: str, ready: asyncio.Event, sets: asyncio.Event) -> None:
        self.to, self.ready, self.sets = to, ready, sets

    async def plan(self, pin: str | None) -> DeploymentPlan:
        self.sets.set()
        await self.ready.wait()
        return DeploymentPlan.model_validate({"from": "live", "to": self.to, "serving": True})


class Fails:
    """A target whose plan fails with `message` after `delay` seconds."""

    def __init__(self, message: str, delay: float) -> None:
        self.message, self.delay = message, delay

    async def plan(self, pin: str | None) -> DeploymentPlan:
        await asyncio.sleep(self.delay)
        raise PermanentError(self.message, provider="fake")


def _spec() -> Any:
    return Rollback.model_validate(manifests.stored(manifests.rollback())).spec


def _providers(frontend: object, backend: object) -> Providers:
    return Providers(
        frontend=cast(DeploymentTarget, frontend), backend=cast(DeploymentTarget, backend)
    )


async def test_frontend_and_backend_are_read_at_the_same_time() -> None:
    asked_frontend, asked_backend = asyncio.Event(), asyncio.Event()
    frontend = Reads("dpl_old", ready=asked_backend, sets=asked_frontend)
    backend = Reads("d-old", ready=asked_frontend, sets=asked_backend)
    plan = await asyncio.wait_for(make_plan(_spec(), _providers(frontend, backend), NOW), 2.0)
    assert plan.frontend is not None
    assert plan.frontend.to == "dpl_old"
    assert plan.backend is not None
    assert plan.backend.to == "d-old"


async def test_the_frontends_error_is_reported_even_when_the_backend_fails_first() -> None:
    providers = _providers(Fails("frontend: no project", 0.05), Fails("backend: no service", 0))
    with pytest.raises(ProviderError, match="frontend: no project"):
        await make_plan(_spec(), providers, NOW)
