"""The Vercel fake's world: teams, projects, deployments, production aliases, and how a
rollback or promote job moves them.

Why this module exists: what Vercel does (a job that shows `pending`, then `in-progress`, then
its outcome, remapping the production aliases when it succeeds) is the fake's behaviour, apart
from how it is asked for over HTTP (`vercel_server`). Tests seed and inspect it from their own
thread.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable

from sandbox.fakes.http_server import Clock
from sandbox.fakes.vercel_model import (
    DEPLOYMENT_STATES,
    TERMINAL_JOB_STATUSES,
    AliasJob,
    JobOutcome,
    VercelAlias,
    VercelDeployment,
    VercelProject,
)


class VercelWorld:
    """In-memory Vercel state; see `FakeVercel` for the `job_*` flags.

    A base of `FakeVercel`, whose `FakeApi` base provides `clock` and `lock`: seed and inspect
    from any thread; everything else runs under `lock`.
    """

    clock: Clock
    lock: threading.RLock

    def __init__(
        self,
        *,
        token: str,
        user_id: str,
        job_polls: int,
        job_seconds: float | None,
        job_outcome: JobOutcome,
    ) -> None:
        self.job_polls = job_polls
        self.job_seconds = job_seconds
        self.job_outcome: JobOutcome = job_outcome
        self._ids = itertools.count(1)
        self._user_id = user_id
        self._tokens: dict[str, tuple[str, set[str]]] = {token: (user_id, set())}
        self._teams: dict[str, str] = {}  # team id -> slug
        self._projects: dict[str, VercelProject] = {}
        self._deployments: dict[str, VercelDeployment] = {}
        self._last_created = 0

    # ----- seeding and inspection (call from any thread) -----

    def add_token(self, token: str, *, user_id: str, teams: Iterable[str] = ()) -> None:
        with self.lock:
            self._tokens[token] = (user_id, set(teams))

    def add_team(self, team_id: str, *, slug: str, tokens: Iterable[str] | None = None) -> str:
        """Create a team; `tokens` (default: every known token) become its members."""
        with self.lock:
            self._teams[team_id] = slug
            for token in self._tokens if tokens is None else tokens:
                self._tokens[token][1].add(team_id)
            return team_id

    def add_project(
        self, name: str, *, team_id: str | None = None, aliases: Iterable[str] | None = None
    ) -> str:
        """Create a project owned by `team_id` (default: the default token's user account)."""
        with self.lock:
            now = self._now_ms()
            account = team_id or self._user_id
            project = VercelProject(f"prj_{next(self._ids):06d}", name, account, now, now)
            hosts = [f"{name}.example.com"] if aliases is None else list(aliases)
            for host in hosts:
                project.aliases.append(VercelAlias(f"alias_{next(self._ids):06d}", host, now, None))
            self._projects[project.id] = project
            return project.id

    def add_deployment(
        self,
        project: str,
        *,
        state: str = "READY",
        target: str | None = "production",
        created_at: int | None = None,
        meta: dict[str, str] | None = None,
        live: bool | None = None,
    ) -> str:
        """Add a deployment; by default a READY production one becomes live (auto-assigned)."""
        if state not in DEPLOYMENT_STATES:
            raise ValueError(f"unknown Vercel deployment state {state!r}")
        with self.lock:
            proj = self._projects[self._project_id(project)]
            self._last_created = max(self._now_ms(), self._last_created + 1)
            uid = f"dpl_{next(self._ids):06d}"
            dep = VercelDeployment(
                uid=uid,
                name=proj.name,
                project_id=proj.id,
                url=f"{proj.name}-{uid[4:]}.vercel.app",
                created_at=created_at if created_at is not None else self._last_created,
                state=state,
                target=target,
                meta=dict(meta or {}),
                creator_uid=self._user_id,
            )
            self._deployments[uid] = dep
            if live if live is not None else (state == "READY" and target == "production"):
                self._make_live(proj, dep)
            return uid

    def production_deployment(self, project: str) -> str | None:
        with self.lock:
            return self._projects[self._project_id(project)].production

    def project(self, project: str) -> VercelProject:
        """The live state object (mutate only under `fake.lock`)."""
        return self._projects[self._project_id(project)]

    def deployment(self, uid: str) -> VercelDeployment:
        return self._deployments[uid]

    def complete_job(self, project: str, outcome: JobOutcome | None = None) -> None:
        """Step hook: end the project's running job now (with `outcome`, or its planned one)."""
        with self.lock:
            proj = self.project(project)
            if proj.job is not None and proj.job.status not in TERMINAL_JOB_STATUSES:
                proj.job.outcome = outcome or proj.job.outcome
                self._finish_job(proj, proj.job)

    # ----- how alias jobs move -----

    def _advance(self, project: VercelProject, *, poll: bool) -> None:
        job = project.job
        if job is None or job.status in TERMINAL_JOB_STATUSES:
            return
        job.polls += 1 if poll else 0
        if self.job_seconds is not None:
            done = self._now_ms() - job.requested_at >= self.job_seconds * 1000
        else:
            done = job.polls > self.job_polls
        if done:
            self._finish_job(project, job)
        elif job.polls > 0 or self.job_seconds is not None:
            job.status = "in-progress"
            for alias in project.aliases:
                alias.status = "in-progress"

    def _finish_job(self, project: VercelProject, job: AliasJob) -> None:
        job.status = job.outcome
        project.updated_at = self._now_ms()
        if job.outcome == "succeeded":
            self._make_live(project, self._deployments[job.to_id])
        for i, alias in enumerate(project.aliases):
            failed = job.outcome == "failed" and i == 0  # some aliases could not be remapped
            alias.status = "failed" if failed else "completed"
            if job.outcome == "failed" and not failed:
                alias.deployment_id = job.to_id

    def _make_live(self, project: VercelProject, dep: VercelDeployment) -> None:
        project.production = dep.uid
        dep.served_production = True
        for alias in project.aliases:
            alias.deployment_id = dep.uid

    def _previous_production(self, project: VercelProject) -> str | None:
        current = self._deployments.get(project.production or "")
        older = [
            d
            for d in self._deployments.values()
            if d.project_id == project.id
            and d.is_rollback_candidate
            and d is not current
            and (current is None or d.created_at < current.created_at)
        ]
        return max(older, key=lambda d: d.created_at).uid if older else None

    # ----- lookups -----

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _project_id(self, id_or_name: str) -> str:
        if id_or_name in self._projects:
            return id_or_name
        return next(p.id for p in self._projects.values() if p.name == id_or_name)

    def _find_project(self, id_or_name: str, scope: str) -> VercelProject | None:
        return next(
            (
                p
                for p in self._projects.values()
                if id_or_name in (p.id, p.name) and p.account_id == scope
            ),
            None,
        )
