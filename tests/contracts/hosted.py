"""The Vercel and Railway adapters on their stateful fake servers, as worlds.

Why this module exists: the contract suite and each adapter's own suite seed and observe the
same served fake. Each world is a fake with one project (Vercel) or one service with two
replicas (Railway), an older good deployment (`old`) and the live one (`live`), served over real
HTTP; only waiting is virtual (`VirtualTime`). The worlds implement `tests.contracts.worlds.
HostedWorld`; the adapter suites also reach into `fake` for what only one provider has.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rollback_operator.api.rollback import DeploymentPlan
from rollback_operator.api.targets import RailwayTarget, VercelTarget
from rollback_operator.providers import http
from rollback_operator.providers.deployments import railway, vercel
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.railway_server import FakeRailway
from sandbox.fakes.vercel_server import FakeVercel
from tests.contracts.worlds import DeploymentWords, PolicyBlock
from tests.providers.conftest import VirtualTime, fast_options

VERCEL_TOKEN = "vrc-secret-0123456789"
VERCEL_BAD_TOKEN = "vrc-wrong-secret-987654"
TEAM = "team_acme"
HOUR_MS = 3_600_000

RAILWAY_TOKEN = "rw-account-secret-42"
RAILWAY_PROJECT_TOKEN = "rw-project-secret-77"
RAILWAY_BAD_TOKEN = "rw-wrong-secret-13"
REPLICAS = 2


def plan_with(**traffic: Any) -> DeploymentPlan:
    """A plan from `a` to `b` that recorded `traffic` (`serving`)."""
    return DeploymentPlan.model_validate({"from": "a", "to": "b", **traffic})


VERCEL_WORDS = DeploymentWords(
    already_serving="is already the production deployment",
    already_stopped="already paused",
    missing_pin="pinned deployment {pin} not found",
)


@dataclass
class VercelWorld:
    """A served Vercel fake with one team project, not paused."""

    fake: FakeVercel
    url: str
    time: VirtualTime
    project: str
    old: str
    live: str

    journal: MemoryJournal = field(default_factory=MemoryJournal)
    missing: str = "dpl_missing"
    bad_token: str = VERCEL_BAD_TOKEN
    serving_plan: DeploymentPlan = field(default_factory=lambda: plan_with(serving=True))
    failed: int = 0  # deployments add_failed made
    words: DeploymentWords = VERCEL_WORDS

    def config(self) -> dict[str, Any]:
        return {"projectId": self.project, "teamId": TEAM, "apiUrl": self.url,
                "tokenSecretRef": {"name": "vercel", "key": "token"}}  # fmt: skip

    def target(
        self, token: str | None = None, *, page_size: int | None = None,
        options: http.Options | None = None, **pacing: Any,
    ) -> vercel.VercelProject:  # fmt: skip
        pacing |= {"page_size": page_size} if page_size else {}
        paced = replace(vercel.PACING, **{"poll_interval": 0.01, "deadline": 5.0, **pacing})
        config = VercelTarget.model_validate(self.config())
        options = options or fast_options(self.time)
        return vercel.VercelProject(config, token or VERCEL_TOKEN, options, paced)

    def deploy(self, **options: Any) -> str:
        return self.fake.add_deployment(self.project, **options)

    def paused(self) -> bool:
        return self.fake.project(self.project).paused

    def mutations(self, route: str = "*") -> int:
        return self.fake.log.count_mutating(route)

    # ----- the contract's view (tests.contracts.worlds.HostedWorld) -----

    def add_failed(self) -> str:
        self.failed += 1
        after_live = self.fake.deployment(self.live).created_at + self.failed
        return self.deploy(state="ERROR", created_at=after_live, live=False)

    def solo(self) -> tuple[vercel.VercelProject, str]:
        solo = self.fake.add_project("solo", team_id=TEAM)
        only = self.fake.add_deployment(solo)
        return dataclasses.replace(self, project=solo).target(), only

    def serving(self) -> str | None:
        return self.fake.production_deployment(self.project)

    def serves_build_of(self, deployment: str) -> bool:
        return self.serving() == deployment

    def serves_traffic(self) -> bool:
        return not self.paused()

    def traffic_stopped(self) -> bool:
        return self.paused()

    def stop_elsewhere(self) -> None:
        with self.fake.lock:
            self.fake.project(self.project).paused = True

    def plan_says_stopped(self, plan: DeploymentPlan) -> bool:
        return plan.serving is False

    def secrets(self) -> list[str]:
        return [VERCEL_TOKEN, VERCEL_BAD_TOKEN]

    def policy_block(self) -> PolicyBlock:
        return PolicyBlock("frontend", {"vercel": self.config()}, "vercel", VERCEL_TOKEN)


@contextmanager
def vercel_world(time_: VirtualTime, **options: Any) -> Iterator[VercelWorld]:
    """A Vercel fake (built with `options`) holding the world, served while in the block."""
    fake = FakeVercel(token=VERCEL_TOKEN, **options)
    fake.add_team(TEAM, slug="acme")
    project = fake.add_project("web", team_id=TEAM, aliases=["web.example.com", "www.example.com"])
    start = int(time.time() * 1000) - 100 * HOUR_MS
    old = fake.add_deployment(project, created_at=start, meta={"githubCommitSha": "aaa"})
    live = fake.add_deployment(project, created_at=start + HOUR_MS, meta={"githubCommitSha": "bbb"})
    with fake.serve() as server:
        yield VercelWorld(fake, server.url, time_, project, old, live)


RAILWAY_WORDS = DeploymentWords(
    already_serving="already serves",
    already_stopped="already stopped",
    missing_pin="pinned deployment {pin} not found",
)


@dataclass
class RailwayWorld:
    """A served Railway fake: one service with two replicas in one environment."""

    fake: FakeRailway
    url: str
    time: VirtualTime
    project: str
    env: str
    service: str
    old: str
    live: str

    journal: MemoryJournal = field(default_factory=MemoryJournal)
    missing: str = "d-missing"
    bad_token: str = RAILWAY_BAD_TOKEN
    serving_plan: DeploymentPlan = field(default_factory=lambda: plan_with(serving=True))
    words: DeploymentWords = RAILWAY_WORDS

    def config(
        self, token_type: Literal["account", "project"] = "account", service: str | None = None
    ) -> dict[str, Any]:
        return {"projectId": self.project, "environmentId": self.env,
                "serviceId": service or self.service, "tokenType": token_type,
                "apiUrl": f"{self.url}/graphql/v2",
                "tokenSecretRef": {"name": "railway", "key": "token"}}  # fmt: skip

    def target(
        self, token: str | None = None, token_type: Literal["account", "project"] = "account",
        service: str | None = None, *, page_size: int | None = None, **pacing: Any,
    ) -> railway.RailwayService:  # fmt: skip
        pacing |= {"page_size": page_size} if page_size else {}
        paced = replace(railway.PACING, **{"poll_interval": 0.01, "deadline": 5.0, **pacing})
        config = RailwayTarget.model_validate(self.config(token_type, service))
        return railway.RailwayService(
            config, token or RAILWAY_TOKEN, fast_options(self.time), paced
        )

    def deploy(self, status: str = "SUCCESS", **options: Any) -> str:
        return self.fake.add_deployment(self.service, self.env, status=status, **options)

    def active(self) -> str | None:
        return self.fake.active_deployment(self.service, self.env)

    def replicas(self) -> int:
        return self.fake.service_instance(self.service, self.env).num_replicas

    def mutations(self, route: str = "*") -> int:
        return self.fake.log.count_mutating(route)

    # ----- the contract's view (tests.contracts.worlds.HostedWorld) -----

    def add_failed(self) -> str:
        return self.deploy("FAILED")

    def solo(self) -> tuple[railway.RailwayService, str]:
        solo = self.fake.add_service(self.project, replicas=REPLICAS)
        only = self.fake.add_deployment(solo, self.env)
        return self.target(service=solo), only

    def serving(self) -> str | None:
        return self.active()

    def serves_build_of(self, deployment: str) -> bool:
        """Railway rolls back by redeploying a build: the active deployment carries its meta."""
        active = self.active()
        build = self.fake.deployment(deployment).meta
        return active is not None and self.fake.deployment(active).meta == build

    def serves_traffic(self) -> bool:
        serving = self.fake.serving(self.service, self.env)
        return len(serving) == 1 and self.fake.deployment(serving[0]).replicas == REPLICAS

    def traffic_stopped(self) -> bool:
        return not self.fake.serving(self.service, self.env)

    def stop_elsewhere(self) -> None:
        """Someone stopped the active deployment (in Railway's dashboard) a while ago."""
        with self.fake.lock:
            for deployment in self.fake.serving(self.service, self.env):
                self.fake.deployment(deployment).stopped = True

    def plan_says_stopped(self, plan: DeploymentPlan) -> bool:
        return plan.serving is False

    def secrets(self) -> list[str]:
        return [RAILWAY_TOKEN, RAILWAY_PROJECT_TOKEN, RAILWAY_BAD_TOKEN]

    def policy_block(self) -> PolicyBlock:
        block = {"railway": self.config("project")}
        return PolicyBlock("backend", block, "railway", RAILWAY_PROJECT_TOKEN)


@contextmanager
def railway_world(time_: VirtualTime, **options: Any) -> Iterator[RailwayWorld]:
    """A Railway fake (built with `options`) holding the world, served while in the block."""
    fake = FakeRailway(token=RAILWAY_TOKEN, **options)
    project = fake.add_project("shop")
    env = fake.add_environment(project, "production")
    service = fake.add_service(project, replicas=REPLICAS)
    start = time.time() - 3600
    old = fake.add_deployment(service, env, created_at=start, meta={"commitHash": "aaa"})
    live = fake.add_deployment(service, env, created_at=start + 60, meta={"commitHash": "bbb"})
    fake.add_project_token(RAILWAY_PROJECT_TOKEN, project_id=project, environment_id=env)
    with fake.serve() as server:
        yield RailwayWorld(fake, server.url, time_, project, env, service, old, live)
