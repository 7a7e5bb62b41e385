"""The Railway fake's world: projects, environments, services, service instances and
deployments, and how a new deployment moves through its statuses.

Why this module exists: what Railway does to deployments (a rollback or redeploy spawns a
deployment that walks towards SUCCESS, FAILED or CRASHED; on SUCCESS the old one goes REMOVING,
then REMOVED; a deploy of the service builds its latest source; a replica change is staged
until the next deployment; a stop takes effect a few requests later) is the fake's behaviour,
apart from how it is asked for over GraphQL (`railway_server`). Tests seed and inspect it from
their own thread.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Iterable
from typing import Any, Literal

from sandbox.fakes.graphql import GraphQLError
from sandbox.fakes.http_server import Clock
from sandbox.fakes.railway_model import (
    NOT_FOUND,
    RUNNING,
    STATUSES,
    Principal,
    Progress,
    RailwayDeployment,
    RailwayServiceInstance,
)


class RailwayWorld:
    """In-memory Railway state; see `FakeRailway` for the `deploy_*` and drain flags.

    A base of `FakeRailway`, whose `FakeApi` base provides `clock` and `lock`: seed and
    inspect from any thread; everything else runs under `lock`.
    """

    clock: Clock
    lock: threading.RLock

    def __init__(
        self,
        *,
        token: str,
        deploy_polls: int,
        deploy_seconds: float | None,
        deploy_path: tuple[str, ...],
        deploy_outcome: Literal["SUCCESS", "FAILED", "CRASHED"],
        drain_requests: int,
        stop_requests: int,
        replicas_apply_immediately: bool,
    ) -> None:
        self.deploy_polls = deploy_polls
        self.deploy_seconds = deploy_seconds
        self.deploy_path = deploy_path
        self.deploy_outcome = deploy_outcome
        self.drain_requests = drain_requests
        self.stop_requests = stop_requests
        self.replicas_apply_immediately = replicas_apply_immediately
        self._ids = itertools.count(1)
        self._ticks = 0
        self._account_tokens: dict[str, frozenset[str] | None] = {token: None}
        self._project_tokens: dict[str, tuple[str, str, str]] = {}  # -> (id, project, env)
        self._projects: dict[str, str] = {}
        self._environments: dict[str, str] = {}  # env id -> project id
        self._services: dict[str, str] = {}  # service id -> project id
        self._instances: dict[tuple[str, str], RailwayServiceInstance] = {}
        self._deployments: dict[str, RailwayDeployment] = {}

    # ----- seeding and inspection (call from any thread) -----

    def add_account_token(self, token: str, *, projects: Iterable[str] | None = None) -> None:
        """An account/workspace token (`Authorization: Bearer`), limited to `projects`."""
        with self.lock:
            self._account_tokens[token] = None if projects is None else frozenset(projects)

    def add_project_token(self, token: str, *, project_id: str, environment_id: str) -> None:
        """A project token (`Project-Access-Token`) bound to one environment of one project."""
        with self.lock:
            self._project_tokens[token] = (self._new_id(), project_id, environment_id)

    def add_project(self, name: str = "app") -> str:
        with self.lock:
            project_id = self._new_id()
            self._projects[project_id] = name
            return project_id

    def add_environment(self, project_id: str, name: str = "production") -> str:
        with self.lock:
            env_id = self._new_id()
            self._environments[env_id] = project_id
            for service_id in [s for s, p in self._services.items() if p == project_id]:
                self._add_instance(service_id, env_id, "us-west2", 1)
            return env_id

    def add_service(self, project_id: str, *, replicas: int = 1, region: str = "us-west2") -> str:
        """A service with an instance in every environment of the project (now and later)."""
        with self.lock:
            service_id = self._new_id()
            self._services[service_id] = project_id
            for env_id in [e for e, p in self._environments.items() if p == project_id]:
                self._add_instance(service_id, env_id, region, replicas)
            return service_id

    def add_deployment(
        self,
        service_id: str,
        environment_id: str,
        *,
        status: str = "SUCCESS",
        created_at: float | None = None,
        meta: dict[str, Any] | None = None,
        can_rollback: bool | None = None,
    ) -> str:
        """Add a deployment; a new SUCCESS one supersedes (REMOVED) the active one."""
        if status not in STATUSES:
            raise ValueError(f"unknown Railway deployment status {status!r}")
        with self.lock:
            if status == "SUCCESS":
                for old in self._active(service_id, environment_id):
                    self._set_status(old, "REMOVED")
            dep = self._new_deployment(service_id, environment_id, status, meta or {})
            dep.created_at = dep.updated_at = (
                created_at if created_at is not None else dep.created_at
            )
            dep.can_rollback = (
                status in RUNNING | {"REMOVED"} if can_rollback is None else can_rollback
            )
            return dep.id

    def deployment(self, deployment_id: str) -> RailwayDeployment:
        """The live state object (mutate only under `fake.lock`)."""
        return self._deployments[deployment_id]

    def deployments_of(self, service_id: str, environment_id: str) -> list[str]:
        """Every deployment of the service in the environment, newest first."""
        with self.lock:
            mine = [
                d
                for d in self._deployments.values()
                if (d.service_id, d.environment_id) == (service_id, environment_id)
            ]
            return [d.id for d in sorted(mine, key=lambda d: (d.created_at, d.seq), reverse=True)]

    def service_instance(self, service_id: str, environment_id: str) -> RailwayServiceInstance:
        return self._instances[(service_id, environment_id)]

    def active_deployment(self, service_id: str, environment_id: str) -> str | None:
        with self.lock:
            active = self._active(service_id, environment_id)
            return active[0].id if active else None

    def serving(self, service_id: str, environment_id: str) -> list[str]:
        """The deployments whose instances run and take traffic, newest first."""
        with self.lock:
            mine = self._active(service_id, environment_id, also_crashed=True)
            return [d.id for d in mine if d.serving]

    def deploy_source(self, service_id: str, environment_id: str) -> str:
        """What a push to the service's branch does: a deployment of its latest source."""
        with self.lock:
            return self._spawn(self._source(service_id, environment_id), origin="source").id

    def end_deployment(self, deployment_id: str, outcome: str = "SUCCESS") -> None:
        """What Railway does when a deployment's build and deploy end now, however old it is
        (one seeded in BUILDING, say): it reaches `outcome`, and a SUCCESS makes it the active
        deployment, replacing the one that went live after it was created (docs/providers.md#R24,
        the harsh reading)."""
        if outcome not in STATUSES:
            raise ValueError(f"unknown Railway deployment status {outcome!r}")
        with self.lock:
            self._finish(self._deployments[deployment_id], outcome)

    # ----- state machine -----

    def _spawn(self, source: RailwayDeployment, *, origin: str) -> RailwayDeployment:
        """A new deployment of `source`'s image, meta and variables, started now."""
        first = self.deploy_path[0] if self.deploy_polls or self.deploy_seconds else "QUEUED"
        dep = self._new_deployment(source.service_id, source.environment_id, first, source.meta)
        dep.origin = origin
        dep.progress = Progress(self.deploy_path, self.deploy_outcome, self.clock())
        self._advance(dep)
        return dep

    def _advance(self, dep: RailwayDeployment) -> None:
        p = dep.progress
        if p is None:
            return
        if self.deploy_seconds is not None:
            share = (self.clock() - p.started) / self.deploy_seconds if self.deploy_seconds else 1
            done, index = share >= 1, int(share * len(p.path))
        else:
            done = p.polls > self.deploy_polls
            index = (max(p.polls - 1, 0) * len(p.path)) // max(self.deploy_polls, 1)
        if not done:
            self._set_status(dep, p.path[min(index, len(p.path) - 1)])
            return
        self._finish(dep, p.outcome)

    def _finish(self, dep: RailwayDeployment, outcome: str) -> None:
        """`dep` ends its build and deploy as `outcome`; a SUCCESS replaces every other active
        or crashed deployment of the service, whatever their age (docs/providers.md#R24)."""
        dep.progress = None
        self._set_status(dep, outcome)
        if outcome == "SUCCESS":
            dep.can_rollback = True
            for old in self._active(dep.service_id, dep.environment_id, also_crashed=True):
                if old is not dep:
                    self._set_status(old, "REMOVING")
                    old.removing_since = self._ticks

    def _tick(self) -> None:
        """Once per request: finish stops and draining REMOVING deployments, advance timed
        ones."""
        self._ticks += 1
        for dep in list(self._deployments.values()):
            if dep.stopping_since is not None and (
                self._ticks - dep.stopping_since > self.stop_requests
            ):
                dep.stopping_since, dep.stopped = None, True
            if (
                dep.removing_since is not None
                and self._ticks - dep.removing_since > self.drain_requests
            ):
                dep.removing_since = None
                self._set_status(dep, "REMOVED")
            if dep.progress is not None and self.deploy_seconds is not None:
                self._advance(dep)

    def _resize(self, inst: RailwayServiceInstance, *, immediate: bool | None = None) -> None:
        if immediate if immediate is not None else self.replicas_apply_immediately:
            for dep in self._active(inst.service_id, inst.environment_id):
                dep.replicas = inst.total_replicas

    def _set_status(self, dep: RailwayDeployment, status: str) -> None:
        if dep.status != status:
            dep.status = status
            dep.updated_at = self.clock()

    # ----- lookups -----

    def _find(self, who: Principal, deployment_id: str) -> RailwayDeployment:
        dep = self._deployments.get(deployment_id)
        if dep is None:
            raise GraphQLError(NOT_FOUND)
        if not who.allows(dep.project_id, dep.environment_id):
            raise GraphQLError("Not Authorized")
        return dep

    def _instance(self, who: Principal, service: str, env: str) -> RailwayServiceInstance:
        inst = self._instances.get((service, env))
        if inst is None:
            raise GraphQLError("ServiceInstance not found")
        if not who.allows(self._services[service], env):
            raise GraphQLError("Not Authorized")
        return inst

    def _active(
        self, service: str, env: str, *, also_crashed: bool = False
    ) -> list[RailwayDeployment]:
        states = RUNNING | {"CRASHED"} if also_crashed else RUNNING
        return sorted(
            (
                d
                for d in self._deployments.values()
                if (d.service_id, d.environment_id) == (service, env)
                and d.status in states
                and not (d.stopped and not also_crashed)
            ),
            key=lambda d: (d.created_at, d.seq),
            reverse=True,
        )

    def _stop(self, dep: RailwayDeployment) -> None:
        """`deploymentStop`: the instances keep running for `stop_requests` more requests."""
        if dep.stopped or dep.stopping_since is not None:
            return
        dep.updated_at = self.clock()
        if self.stop_requests:
            dep.stopping_since = self._ticks
        else:
            dep.stopped = True

    def _source(self, service: str, env: str) -> RailwayDeployment:
        """The newest deployment built from the service's source (not a rollback's copy)."""
        built = [
            d
            for d in self._deployments.values()
            if (d.service_id, d.environment_id) == (service, env) and d.origin == "source"
        ]
        if not built:
            raise GraphQLError("No source to deploy")
        return max(built, key=lambda d: (d.created_at, d.seq))

    def _latest(self, inst: RailwayServiceInstance) -> RailwayDeployment | None:
        mine = [
            d
            for d in self._deployments.values()
            if (d.service_id, d.environment_id) == (inst.service_id, inst.environment_id)
        ]
        return max(mine, key=lambda d: (d.created_at, d.seq), default=None)

    def _new_id(self) -> str:
        return str(uuid.UUID(int=next(self._ids)))

    def _add_instance(self, service_id: str, env_id: str, region: str, replicas: int) -> None:
        inst = RailwayServiceInstance(
            self._new_id(), service_id, env_id, region, {region: replicas}
        )
        self._instances[(service_id, env_id)] = inst

    def _new_deployment(
        self, service_id: str, env_id: str, status: str, meta: dict[str, Any]
    ) -> RailwayDeployment:
        now = self.clock()
        seq = next(self._ids)
        inst = self._instances[(service_id, env_id)]
        dep = RailwayDeployment(
            id=str(uuid.UUID(int=seq)), seq=seq, project_id=self._services[service_id],
            environment_id=env_id, service_id=service_id, status=status, created_at=now,
            updated_at=now, meta=json.loads(json.dumps(meta)), can_rollback=False,
            replicas=inst.total_replicas,
        )  # fmt: skip
        self._deployments[dep.id] = dep
        return dep
