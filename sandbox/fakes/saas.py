"""Fake Vercel and Railway, served over HTTP and seeded like a small production app.

The operator under test reaches them through the real adapters (`Bed.start(real=...)`): the
policy's `apiUrl`s point here and the tokens come from Secrets applied to the emulated cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from sandbox import manifests
from sandbox.fakes.railway_server import FakeRailway
from sandbox.fakes.vercel_server import FakeVercel

VERCEL_TOKEN = "vercel-e2e-token-5b1d"
RAILWAY_TOKEN = "railway-e2e-token-93ac"
RELEASE_41 = {"commitHash": "4141aaa", "commitMessage": "release 41"}  # the backend's good build
RELEASE_42 = {"commitHash": "4242bbb", "commitMessage": "release 42"}  # its bad one, live
HOUR_MS = 3_600_000


@dataclass
class Saas:
    """Both fakes with their seeded ids and URLs."""

    vercel: FakeVercel
    railway: FakeRailway
    vercel_url: str
    railway_url: str
    project: str
    old: str
    live: str
    service: str
    env: str
    railway_project: str
    railway_old: str
    railway_live: str

    def policy(self, name: str = "mindmate") -> dict[str, Any]:
        """A policy whose frontend and backend are these fakes (database/storage stay fake)."""
        return manifests.policy(
            name,
            targets={
                "frontend": {"vercel": {"projectId": self.project, "apiUrl": self.vercel_url}},
                "backend": {
                    "railway": {
                        "projectId": self.railway_project,
                        "environmentId": self.env,
                        "serviceId": self.service,
                        "apiUrl": f"{self.railway_url}/graphql/v2",
                    }
                },
            },
        )

    @staticmethod
    def secrets() -> list[dict[str, Any]]:
        """The token Secrets the policy refers to."""
        return [
            manifests.secret("vercel", {"token": VERCEL_TOKEN}),
            manifests.secret("railway", {"token": RAILWAY_TOKEN}),
        ]

    def live_frontend(self) -> str | None:
        return self.vercel.production_deployment(self.project)

    def backend_serving(self) -> list[str]:
        """The Railway deployments whose instances run and take traffic."""
        return self.railway.serving(self.service, self.env)


@contextmanager
def serving(
    *,
    latency: float = 0.0,
    job_seconds: float | None = None,
    deploy_seconds: float | None = None,
    history: int = 2,
) -> Iterator[Saas]:
    """Seed and serve both fakes for the duration of the block (`history` Vercel deploys)."""
    vercel = FakeVercel(token=VERCEL_TOKEN, latency=latency, job_seconds=job_seconds)
    project = vercel.add_project("web")
    start = int(time.time() * 1000) - 100 * HOUR_MS
    deploys = [
        vercel.add_deployment(project, created_at=start + i * HOUR_MS) for i in range(history)
    ]
    old, live = deploys[-2], deploys[-1]
    railway = FakeRailway(token=RAILWAY_TOKEN, latency=latency, deploy_seconds=deploy_seconds)
    railway_project = railway.add_project("api")
    env = railway.add_environment(railway_project)
    service = railway.add_service(railway_project, replicas=2)
    r_old = railway.add_deployment(service, env, created_at=time.time() - 7200, meta=RELEASE_41)
    r_live = railway.add_deployment(service, env, created_at=time.time() - 3600, meta=RELEASE_42)
    with ExitStack() as stack:
        v_server = stack.enter_context(vercel.serve())
        r_server = stack.enter_context(railway.serve())
        yield Saas(vercel, railway, v_server.url, r_server.url, project, old, live,
                   service, env, railway_project, r_old, r_live)  # fmt: skip
