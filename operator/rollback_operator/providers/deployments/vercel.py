"""The frontend as a Vercel project: plan, instant rollback (or promote), pause and unpause.

Why this module exists: it is the `DeploymentTarget` for Vercel, the runbook's `vercel
rollback` as REST calls that look before they act. Vercel's own state makes most steps
naturally idempotent: production is `targets.production` of the project, and a rollback or
promote is an asynchronous job visible as the project's `lastAliasRequest` (docs/providers.md#V6),
so a retried step finds the job it started and waits for it instead of starting another.

Vercel facts this module relies on (docs/providers.md, V1-V13): list items carry `uid`, single
deployments `id` (V4, V5); lists are newest first and page with `until=pagination.next` (V4);
rollback answers 201 and the job is polled on the project (V6, V7); a refused rollback
(400/402/422: not a rollback candidate, plan limits) may still be done by promote, which needs
only a READY production deployment (V7, V9); 409 means another job is running (V7, a guess).
After an instant rollback Vercel no longer auto-assigns production domains to new deployments
until someone promotes (V12, unconfirmed); the step says so. A production deployment made while
the rollback ran (a CI deploy: created since the job's `requestedAt`, V13) is named: it fails the
step when it is what serves production, and is a warning in the step's result when it is not.

In a burst of rollbacks each round trip a step waits for costs far more than alone (issue 14):
reads that do not depend on each other go out together, an operation reads each page of the
deployments once, and the rollback writes nothing to its journal before asking.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rollback_operator.api import targets
from rollback_operator.api.rollback import DeploymentPlan
from rollback_operator.providers import errors, http
from rollback_operator.providers.base import Candidate, Journal, StepResult
from rollback_operator.providers.context import BuildContext
from rollback_operator.providers.deployments import vercel_shapes as shapes
from rollback_operator.providers.deployments.pacing import Pacing

logger = logging.getLogger(__name__)

Json = dict[str, Any]
ROLLBACK_REFUSED = frozenset({400, 402, 422})
JOB_RUNNING = 409
FOLLOW_UP = "promote a deployment to re-enable automatic production domain assignment"


PACING = Pacing(poll_interval=0.25, deadline=180.0, page_size=100, max_pages=50)
"""Vercel's alias job is quick; its list pages hold up to 100 deployments."""


class VercelProject:
    """`DeploymentTarget` for one Vercel project, optionally owned by a team."""

    def __init__(
        self,
        config: targets.VercelTarget,
        token: str,
        options: http.Options | None = None,
        pacing: Pacing = PACING,
    ) -> None:
        auth = {"Authorization": f"Bearer {token}"}
        self._http = http.Http("vercel", config.api_url, auth, options)
        self._project = config.project_id
        self._team = config.team_id
        self._pacing = pacing

    async def plan(self, pin: str | None) -> DeploymentPlan:
        async with self._http.session() as s:
            if pin:
                project, dep = await errors.in_order(
                    self._read_project(s, "plan"), self._read_pin(s, pin)
                )
                to = self._check_pin(pin, dep, project)
            else:
                pages = self._pages(s, "plan")
                project, _ = await errors.in_order(self._read_project(s, "plan"), pages.read())
                to = await self._last_good(pages, shapes.production(project))
        return DeploymentPlan.model_validate(
            {"from": shapes.production_id(project), "to": to, "serving": not project.get("paused")}
        )

    async def rollback(self, to: str, key: str, journal: Journal) -> StepResult:
        async with self._http.session() as s:
            project = await self._read_project(s, "rollback")
            if shapes.production_id(project) == to:
                return StepResult(
                    f"{to} is already the production deployment", {"deploymentId": to}
                )
            running = shapes.job(project, to, running=True)
            earlier = (
                None if running else (project.get("lastAliasRequest") or {}).get("requestedAt")
            )
            method = running["type"] if running else await self._start(s, project["id"], to, key)
            project, job = await self._wait(s, to, earlier)
            others, failed = await errors.in_order(
                self._made_since(s, job.get("requestedAt")), self._failed_aliases(s, project, job)
            )
            self._check_outcome(project, job, to, failed, others)
        ids = {"deploymentId": to, "method": method}
        ids |= {"jobId": f"{job['type']}-{job['requestedAt']}"} if job.get("requestedAt") else {}
        ids |= {"concurrentDeployments": ", ".join(others)} if others else {}
        warning = (
            f"; warning: deployment {', '.join(others)} was made while the rollback ran (a "
            "concurrent deploy?): it is not live, and promoting it would undo the rollback"
        ) if others else ""  # fmt: skip
        if method != "rollback":
            return StepResult(f"production moved to {to} by promote{warning}", ids)
        return StepResult(
            f"production moved to {to} by instant rollback{warning}; follow-up: {FOLLOW_UP}",
            ids | {"followUp": FOLLOW_UP},
        )

    async def stop_traffic(self, key: str, plan: DeploymentPlan) -> StepResult:
        async with self._http.session() as s:
            project = await self._read_project(s, "stop traffic")
            if project.get("paused"):
                return StepResult("the project is already paused", {"paused": "true"})
            await s.send(self._call("stop traffic", "POST", f"{_path(project)}/pause"))
        return StepResult("paused the project: production serves no traffic", {"paused": "true"})

    async def resume_traffic(self, key: str, plan: DeploymentPlan, journal: Journal) -> StepResult:
        if plan.serving is False:
            return StepResult("the project was paused before this rollback; left paused")
        async with self._http.session() as s:
            project = await self._read_project(s, "resume traffic")
            if not project.get("paused"):
                return StepResult("the project is not paused; nothing to do")
            await s.send(self._call("resume traffic", "POST", f"{_path(project)}/unpause"))
        return StepResult("unpaused the project: production serves traffic", {"unpaused": "true"})

    async def candidates(self, limit: int) -> list[Candidate]:
        async with self._http.session() as s:
            pages = self._pages(s, "candidates")
            project, _ = await errors.in_order(self._read_project(s, "candidates"), pages.read())
            live = shapes.production_id(project)
            default = await self._good_before(pages, shapes.production(project))
            listed = await self._newest(pages, limit, {live, default} - {None})
        return [shapes.candidate(item, live, default) for item in listed]

    # ----- plan -----

    async def _read_pin(self, s: http.Session, pin: str) -> Json:
        try:
            return await http.json_object(s, self._call("plan", "GET", f"/v13/deployments/{pin}"))
        except errors.NotFoundError:
            message = f"plan: pinned deployment {pin} not found"
            raise self._http.error(message, errors.NotFoundError) from None

    def _check_pin(self, pin: str, dep: Json, project: Json) -> str:
        problem = shapes.pin_problem(dep, project)
        if problem:
            raise self._http.error(
                f"plan: pinned deployment {pin} {problem}", errors.PermanentError
            )
        return str(dep["id"])

    async def _last_good(self, pages: _Pages, live: Json | None) -> str:
        """What `_good_before` finds; NotFoundError when there is none."""
        found = await self._good_before(pages, live)
        if found is None:
            where = f"older than the live one {live['id']}" if live else "at all"
            raise self._http.error(
                f"plan: no earlier READY production deployment {where}", errors.NotFoundError
            )
        return found

    async def _good_before(self, pages: _Pages, live: Json | None) -> str | None:
        """The newest READY production deployment that served production before `live`."""
        newest = live.get("createdAt") if live else None

        def good(item: Json) -> bool:
            older = newest is None or shapes.created(item) < newest
            ready = (item.get("state") or item.get("readyState")) == "READY"
            return older and ready and item.get("isRollbackCandidate") is not False

        found = await self._find_deployment(pages, good)
        return str(found["uid"]) if found else None

    async def _newest(self, pages: _Pages, limit: int, marked: set[str | None]) -> list[Json]:
        """The newest `limit` production deployments, and those of `marked` further down."""
        listed: list[Json] = []

        def take(item: Json) -> bool:
            if len(listed) < limit or item.get("uid") in marked:
                listed.append(item)
            return len(listed) >= limit and marked <= {d.get("uid") for d in listed}

        await self._find_deployment(pages, take)
        return listed

    async def _find_deployment(self, pages: _Pages, wanted: Callable[[Json], bool]) -> Json | None:
        """The first production deployment, newest first, that `wanted` accepts."""
        until: int | None = None
        for _ in range(self._pacing.max_pages):
            page = await pages.read(until)
            found = next((d for d in page.get("deployments") or [] if wanted(d)), None)
            until = (page.get("pagination") or {}).get("next")
            if found is not None or until is None:
                return found
        raise self._http.error(
            f"{pages.operation}: no candidate in the newest {self._pacing.max_pages} pages of "
            "deployments; pin the deployment to roll back to",
            errors.PermanentError,
        )

    def _pages(self, s: http.Session, operation: str, since: int | None = None) -> _Pages:
        """The production deployments' list (created after `since`, ms, if given), read page by
        page for one `operation`."""

        async def read(until: int | None) -> Json:
            params = {"projectId": self._project, "target": "production",
                      "limit": str(self._pacing.page_size)}  # fmt: skip
            params |= {"until": str(until)} if until is not None else {}
            params |= {"since": str(since)} if since is not None else {}
            call = self._call(operation, "GET", "/v6/deployments", params)
            return await http.json_object(s, call)

        return _Pages(operation, read)

    # ----- rollback -----

    async def _start(self, s: http.Session, project_id: str, to: str, key: str) -> str:
        """Ask for an instant rollback, else a promote; the method Vercel accepted."""
        path = f"/v1/projects/{project_id}/rollback/{to}"
        try:
            await s.send(self._call("rollback", "POST", path, {"description": f"rollback {key}"}))
            return "rollback"
        except errors.Refused as refused:
            if refused.status == JOB_RUNNING:
                return await self._adopt(s, to, refused)
            if refused.status not in ROLLBACK_REFUSED:
                raise
            logger.info("vercel: instant rollback to %s refused (%s); promoting", to, refused)
        try:
            await s.send(self._call("rollback", "POST", f"/v10/projects/{project_id}/promote/{to}"))
        except errors.Refused as refused:
            if refused.status == JOB_RUNNING:
                return await self._adopt(s, to, refused)
            raise self._http.error(
                f"rollback: Vercel refused both instant rollback and promote of {to}: "
                f"{refused.message}",
                errors.PermanentError,
            ) from None
        return "promote"

    async def _adopt(self, s: http.Session, to: str, refused: errors.Refused) -> str:
        """A 409: wait for the running job if it moves to `to`, else try again later."""
        job = shapes.job(await self._read_project(s, "rollback"), to, running=True)
        if job is None:
            raise self._http.error(
                f"rollback: another rollback or promote is running ({refused.message})",
                errors.RetryableError,
            )
        return str(job["type"])

    async def _wait(self, s: http.Session, to: str, earlier: Any) -> tuple[Json, Json]:
        """The project once its job to `to` has ended (or `to` is live without a visible job).

        A job requested at `earlier` is the one seen before ours was asked for: not ours. The
        first look comes one poll interval after the job was asked for (or seen running), not at
        once: a look right away would only find what the step just asked for or saw.
        """
        wait = self._pacing.wait(self._http)
        state = "pending"
        while True:
            await wait.next(
                f"rollback: Vercel's job to {to} is still {state} after {wait.seconds:g}s"
            )
            project = await self._read_project(s, "rollback")
            job = shapes.job(project, to, running=False)
            job = None if job and earlier and job.get("requestedAt") == earlier else job
            if job is not None and job.get("jobStatus") in shapes.TERMINAL:
                return project, job
            if job is None and shapes.production_id(project) == to:
                return project, {}
            state = str(job.get("jobStatus")) if job else "not visible"

    async def _made_since(self, s: http.Session, since: Any) -> list[str]:
        """Production deployments created since `since` (the job's `requestedAt`, ms), newest
        first; [] without it (docs/providers.md#V13). Vercel is asked for those only (`since`
        is "after", V4), so the answer is short and its order does not matter."""
        made: list[str] = []

        def take(item: Json) -> bool:
            newer = shapes.created(item) >= int(since)
            made.extend([str(item["uid"])] if newer else [])
            return not newer

        if since is not None:
            await self._find_deployment(self._pages(s, "rollback", int(since) - 1), take)
        return made

    def _check_outcome(
        self, project: Json, job: Json, to: str, failed: list[str], others: list[str]
    ) -> None:
        """Raise unless the job ended well and `to` now serves production."""
        status, live = job.get("jobStatus", "succeeded"), shapes.production_id(project)
        if live in others:
            raise self._http.error(
                f"rollback: production is {live}, a deployment made while the rollback to {to} "
                "ran (a concurrent deploy?), not the rollback's target; promote or roll back "
                f"to {to} again once that deploy is stopped",
                errors.PermanentError,
            )
        if status == "failed":
            aliases = f"; aliases not moved: {', '.join(failed)}" if failed else ""
            raise self._http.error(
                f"rollback: Vercel's {job.get('type')} job to {to} failed{aliases}",
                errors.PermanentError,
            )
        if live != to:
            raise self._http.error(
                f"rollback: Vercel's job to {to} ended {status} but production is {live}",
                errors.PermanentError,
            )

    async def _failed_aliases(self, s: http.Session, project: Json, job: Json) -> list[str]:
        """Hostnames a failed job could not move (best effort: [] if the listing fails)."""
        if job.get("jobStatus") != "failed":
            return []
        path = f"/v9/projects/{project['id']}/{job.get('type', 'rollback')}/aliases"
        call = self._call("rollback", "GET", path, {"failedOnly": "true", "limit": "20"})
        try:
            listed = (await http.json_object(s, call)).get("aliases") or []
        except errors.ProviderError:
            return []
        return [shapes.hostname(a.get("alias")) for a in listed if isinstance(a, dict)]

    # ----- helpers -----

    async def _read_project(self, s: http.Session, operation: str) -> Json:
        return await http.json_object(
            s, self._call(operation, "GET", f"/v9/projects/{self._project}")
        )

    def _call(
        self, operation: str, method: str, path: str, params: Mapping[str, str] | None = None
    ) -> http.Call:
        scope = {"teamId": self._team} if self._team else {}
        body: Json | None = {} if method == "POST" else None
        return http.Call(operation, method, path, {**scope, **(params or {})}, body)


class _Pages:
    """The pages of the deployments' list one operation has read, each read once.

    Only for reads with nothing sent to Vercel in between: after a rollback is asked for, a
    fresh `_Pages` reads what changed."""

    def __init__(self, operation: str, read: Callable[[int | None], Awaitable[Json]]) -> None:
        self.operation = operation
        self._read, self._pages = read, dict[int | None, Json]()

    async def read(self, until: int | None = None) -> Json:
        """The page of deployments created before `until` (ms; None: the newest page)."""
        if until not in self._pages:
            self._pages[until] = await self._read(until)
        return self._pages[until]


def _path(project: Json) -> str:
    return f"/v1/projects/{project['id']}"


async def build(config: targets.VercelTarget, context: BuildContext) -> VercelProject:
    """The adapter of a policy's `targets.frontend.vercel` block."""
    return VercelProject(config, await context.secret(config.token_secret_ref))
