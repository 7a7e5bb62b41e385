"""A stateful fake of the slice of Vercel's REST API that the rollback operator calls.

Why this module exists: the operator's Vercel adapter must be tested over real HTTP (bearer
auth, team scoping, `until` pagination, the asynchronous instant-rollback job polled through
the project's `lastAliasRequest`, 429/5xx/slow/dropped calls) without talking to Vercel.
Behaviour follows docs/providers.md V1-V12. Where a fact is uncertain there, the documented
primary behaviour is the default and the alternative is a constructor flag (see `FakeVercel`);
where this fake is kinder than the facts: docs/providers.md#kinder, items 7 and 9.

Routes served (one handler per group of API versions):
`GET /v6|v7/deployments`, `GET /v13/deployments/{idOrUrl}`, `GET /v8|v9/projects/{idOrName}`,
`POST /v1|v9/projects/{p}/rollback/{d}`, `POST /v10/projects/{p}/promote/{d}`,
`POST /v1/projects/{p}/pause|unpause`, `GET /v1|v9/projects/{p}/rollback|promote/aliases`.

The state, and how alias jobs move, live in `vercel_world`; the records and their JSON shapes in
`vercel_model`; this module is the HTTP API over them: auth and team scope, routes, rate limits
and faults.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from aiohttp import web

from sandbox.fakes.http_server import (
    ApiCall,
    Clock,
    FakeApi,
    RateLimited,
    RateState,
    RateWindow,
    ReplyFault,
    ServerError,
)
from sandbox.fakes.vercel_model import (
    DEPLOYMENT_STATES,
    ERROR_CODES,
    TERMINAL_JOB_STATUSES,
    AliasJob,
    JobOutcome,
    RollbackRejections,
    VercelDeployment,
    alias_json,
    full,
    list_item,
    matches_filters,
    page,
)
from sandbox.fakes.vercel_world import VercelWorld

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Params = dict[str, str]
Handler = Callable[[ApiCall, str, Params], web.Response]


class FakeVercel(FakeApi, VercelWorld):
    """In-memory Vercel with projects, deployments, production aliases and alias jobs.

    Job timing: a rollback/promote job shows `pending` until polled, `in-progress` for the
    first `job_polls` project reads, and its terminal `job_outcome` on the next one; with
    `job_seconds` set it instead ends once that much `clock` time has passed.

    Uncertain points (docs/providers.md) and their flags: invalid token status
    (`auth_failure_status`, 403 default, 401 optional; V2); comma-separated `state` filter
    (`comma_separated_states`, off: one state per request; V4); promote answer
    (`promote_status`, 201 or 202; V9); flat SDK-style promote alias listing
    (`flat_promote_aliases`; V10); refusal statuses (`rejections`; V7); Hobby "previous
    deployment only" rule (`hobby_plan`; V8); per-endpoint limits (`rate_limit` per 60 s, off
    by default; V3); `X-RateLimit-*` headers (`rate_limit_headers`, off by default; V3);
    default page size (`default_page_size`, 20); a job's `requestedAt` stamped on a clock
    ahead of the deployments' `createdAt` (`job_clock_ahead_ms`, 0 by default; V13).
    """

    def __init__(
        self,
        *,
        token: str = "vercel-test-token",
        user_id: str = "user_fake",
        latency: float = 0.0,
        clock: Clock = time.time,
        job_polls: int = 2,
        job_seconds: float | None = None,
        job_outcome: JobOutcome = "succeeded",
        auth_failure_status: Literal[401, 403] = 403,
        comma_separated_states: bool = False,
        promote_status: Literal[201, 202] = 201,
        flat_promote_aliases: bool = False,
        hobby_plan: bool = False,
        rejections: RollbackRejections | None = None,
        rate_limit: int | None = None,
        rate_limit_headers: bool = False,
        default_page_size: int = 20,
        job_clock_ahead_ms: int = 0,
    ) -> None:
        FakeApi.__init__(self, latency=latency, clock=clock)
        VercelWorld.__init__(
            self, token=token, user_id=user_id, job_polls=job_polls, job_seconds=job_seconds,
            job_outcome=job_outcome,
        )  # fmt: skip
        self.auth_failure_status = auth_failure_status
        self.comma_separated_states = comma_separated_states
        self.promote_status = promote_status
        self.flat_promote_aliases = flat_promote_aliases
        self.hobby_plan = hobby_plan
        self.rejections = rejections or RollbackRejections()
        self.rate_limit_headers = rate_limit_headers
        self.default_page_size = default_page_size
        self.job_clock_ahead_ms = job_clock_ahead_ms
        self._rate = RateWindow(rate_limit, 60.0, clock) if rate_limit is not None else None
        self._last_rate: RateState | None = None
        self._trace_ids = itertools.count(1)
        p, d = r"(?P<project>[^/]+)", r"(?P<dep>[^/]+)"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", r"/v[67]/deployments", self._list_deployments),
            ("GET", rf"/v13/deployments/{d}", self._get_deployment),
            ("GET", rf"/v[89]/projects/{p}", self._get_project),
            ("POST", rf"/v(?:1|9)/projects/{p}/rollback/{d}", self._rollback),
            ("POST", rf"/v10/projects/{p}/promote/{d}", self._promote),
            ("POST", rf"/v1/projects/{p}/(?P<action>pause|unpause)", self._pause),
            ("GET", rf"/v(?:1|9)/projects/{p}/(?P<kind>rollback|promote)/aliases",
             self._list_job_aliases),
        ]  # fmt: skip
        self._routes = [(m, re.compile(r), h) for m, r, h in routes]

    def secrets(self) -> Iterable[str]:
        return list(self._tokens)

    # ----- FakeApi hooks -----

    def describe(self, call: ApiCall) -> tuple[str, bool]:
        return f"{call.method} {call.path}", call.method not in _SAFE_METHODS

    def admit(self, call: ApiCall, route: str) -> web.Response | None:
        self._last_rate = None
        if self._rate is None:
            return None
        matched = [p.pattern for m, p, _ in self._routes if p.fullmatch(call.path)]
        state = self._last_rate = self._rate.hit(f"{call.method} {(matched or [call.path])[0]}")
        return self._rate_limited(state) if state.exceeded else None

    def fault_response(self, fault: ReplyFault) -> web.Response:
        self._last_rate = None
        if isinstance(fault, RateLimited):
            now = self.clock()
            limit = self._rate.limit if self._rate else 100
            return self._rate_limited(
                RateState(limit, 0, now + fault.retry_after, fault.retry_after, True)
            )
        if isinstance(fault, ServerError):
            return _error(fault.status, fault.message, "internal_server_error")
        return _error(fault.status or 400, fault.message, fault.code)

    def finish(self, call: ApiCall, response: web.Response) -> None:
        response.headers.setdefault("x-vercel-id", f"fake1::{next(self._trace_ids):08d}")
        if self._last_rate is not None:
            self._rate_headers(response, self._last_rate)

    def dispatch(self, call: ApiCall) -> web.Response:
        auth = call.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if token not in self._tokens:
            return _error(self.auth_failure_status, "Not authorized", "forbidden")
        scope = self._scope(call, token)
        if scope is None:
            return _error(403, "Not authorized", "forbidden")
        allowed = []
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(call.path)
            if match and method == call.method:
                if call.method == "POST" and call.json_error:
                    return _error(400, "Invalid JSON body")
                return handler(call, scope, match.groupdict())
            allowed += [method] if match else []
        if allowed:
            return _error(405, f"Method {call.method} is not allowed", "method_unknown")
        return _error(404, "The requested path was not found", "not_found")

    # ----- handlers -----

    def _list_deployments(self, call: ApiCall, scope: str, params: Params) -> web.Response:
        q = call.query
        if "projectId" in q and "projectIds" in q:
            return _error(400, "`projectId` and `projectIds` cannot be used together")
        wanted = {v for raw in q.getall("projectIds", []) for v in raw.split(",")}
        wanted |= {q["projectId"]} if "projectId" in q else set()
        projects = {
            p.id
            for p in self._projects.values()
            if p.account_id == scope and (not wanted or {p.id, p.name} & wanted)
        }
        try:
            limit = _int_param(q, "limit") or self.default_page_size
            until = _int_param(q, "until", "to")
            since = _int_param(q, "since", "from")
            states = self._states(q.get("state"))
        except ValueError as exc:
            return _error(400, str(exc))
        deps = [
            d
            for d in self._deployments.values()
            if d.project_id in projects
            and (states is None or d.state in states)
            and (until is None or d.created_at < until)
            and (since is None or d.created_at > since)
            and matches_filters(d, q)
        ]
        deps.sort(key=lambda d: (d.created_at, d.uid), reverse=True)
        return web.json_response(
            {"deployments": [list_item(d) for d in deps[:limit]], **page(deps, limit)}
        )

    def _get_deployment(self, call: ApiCall, scope: str, params: Params) -> web.Response:
        key = params["dep"].removeprefix("https://")
        dep = self._deployments.get(key) or next(
            (d for d in self._deployments.values() if d.url == key), None
        )
        if dep is None or self._projects[dep.project_id].account_id != scope:
            return _error(404, "Deployment not found")
        return web.json_response(self._full_json(dep))

    def _get_project(self, call: ApiCall, scope: str, params: Params) -> web.Response:
        project = self._find_project(params["project"], scope)
        if project is None:
            return _error(404, "Project not found")
        self._advance(project, poll=True)
        prod = self._deployments.get(project.production or "")
        latest = sorted(
            (d for d in self._deployments.values() if d.project_id == project.id),
            key=lambda d: d.created_at,
            reverse=True,
        )[:5]
        return web.json_response(
            {
                "id": project.id,
                "name": project.name,
                "accountId": project.account_id,
                "createdAt": project.created_at,
                "updatedAt": project.updated_at,
                "paused": project.paused,
                "live": prod is not None,
                "targets": {"production": self._full_json(prod) if prod else None},
                "latestDeployments": [self._full_json(d) for d in latest],
                "lastRollbackTarget": None,
                "lastAliasRequest": project.job.to_json() if project.job else None,
            }
        )

    def _rollback(self, call: ApiCall, scope: str, params: Params) -> web.Response:
        return self._request_job(call, scope, params, "rollback")

    def _promote(self, call: ApiCall, scope: str, params: Params) -> web.Response:
        return self._request_job(call, scope, params, "promote")

    def _request_job(
        self, call: ApiCall, scope: str, params: Params, kind: Literal["rollback", "promote"]
    ) -> web.Response:
        project = self._find_project(params["project"], scope)
        dep = self._deployments.get(params["dep"])
        if project is None or dep is None:
            return _error(404, "Project not found" if project is None else "Deployment not found")
        rej = self.rejections
        if dep.project_id != project.id:
            return _error(rej.other_project, "Deployment belongs to another project")
        self._advance(project, poll=False)
        if project.job is not None and project.job.status not in TERMINAL_JOB_STATUSES:
            return _error(rej.job_running, "Another rollback or promote is in progress")
        if kind == "rollback" and not (dep.is_rollback_candidate and dep.target == "production"):
            return _error(rej.ineligible, "Deployment is not eligible for rollback")
        if kind == "promote" and not (dep.state == "READY" and dep.target == "production"):
            return _error(rej.ineligible, "Deployment cannot be promoted")
        if kind == "rollback" and self.hobby_plan and dep.uid != self._previous_production(project):
            return _error(rej.hobby_not_previous, "Hobby plans may only roll back one deployment")
        project.job = AliasJob(
            kind, project.production, dep.uid, self._now_ms(), self.job_outcome,
            description=call.query.get("description"), clock_ahead_ms=self.job_clock_ahead_ms,
        )  # fmt: skip
        project.updated_at = self._now_ms()
        for alias in project.aliases:
            alias.status = "pending"
        return web.Response(status=201 if kind == "rollback" else self.promote_status)

    def _pause(self, call: ApiCall, scope: str, params: Params) -> web.Response:
        project = self._find_project(params["project"], scope)
        if project is None:  # documented quirk: 400, not 404
            return _error(400, "Project not found")
        project.paused = params["action"] == "pause"
        project.updated_at = self._now_ms()
        return web.Response(status=200)

    def _list_job_aliases(self, call: ApiCall, scope: str, params: Params) -> web.Response:
        project = self._find_project(params["project"], scope)
        if project is None:
            return _error(404, "Project not found")
        q = call.query
        try:
            limit = _int_param(q, "limit") or 20
            until, since = _int_param(q, "until"), _int_param(q, "since")
        except ValueError as exc:
            return _error(400, str(exc))
        job = project.job if project.job and project.job.type == params["kind"] else None
        aliases = sorted(
            (
                a
                for a in (project.aliases if job else [])
                if (q.get("failedOnly") != "true" or a.status == "failed")
                and (until is None or a.created_at < until)
                and (since is None or a.created_at > since)
            ),
            key=lambda a: a.created_at,
            reverse=True,
        )
        flat = self.flat_promote_aliases and params["kind"] == "promote"
        items = [
            {"id": a.id, "status": a.status, "alias": alias_json(a, flat)} for a in aliases[:limit]
        ]
        return web.json_response({"aliases": items, **page(aliases, limit)})

    # ----- callers, filters and rate limits -----

    def _full_json(self, d: VercelDeployment) -> dict[str, Any]:
        return full(d, self._projects[d.project_id], self._teams)

    def _scope(self, call: ApiCall, token: str) -> str | None:
        """Account id the call acts on: `teamId`, else `slug`, else the token's user."""
        user_id, teams = self._tokens[token]
        team = call.query.get("teamId")
        if team is None and "slug" in call.query:
            team = next((t for t, s in self._teams.items() if s == call.query["slug"]), "")
        if team is None:
            return user_id
        return team if team in teams and team in self._teams else None

    def _states(self, raw: str | None) -> set[str] | None:
        if raw is None:
            return None
        states = set(raw.split(",")) if self.comma_separated_states else {raw}
        if not states <= DEPLOYMENT_STATES:
            raise ValueError(f"Invalid `state` value: {raw}")
        return states

    def _rate_limited(self, state: RateState) -> web.Response:
        limit = {
            "remaining": state.remaining,
            "reset": int(state.reset_at),
            "resetMs": int(state.reset_at * 1000),
            "total": state.limit,
        }
        response = _error(429, "Rate limit exceeded", "rate_limited", limit=limit)
        response.headers["Retry-After"] = str(state.retry_after)
        self._rate_headers(response, state)
        return response

    def _rate_headers(self, response: web.Response, state: RateState) -> None:
        """`X-RateLimit-*` (uncertain for Vercel, docs/providers.md#V3: only with
        `rate_limit_headers`)."""
        if self.rate_limit_headers:
            response.headers.setdefault("X-RateLimit-Limit", str(state.limit))
            response.headers.setdefault("X-RateLimit-Remaining", str(state.remaining))
            response.headers.setdefault("X-RateLimit-Reset", str(int(state.reset_at)))


def _error(status: int, message: str, code: str | None = None, **extra: Any) -> web.Response:
    """Vercel's documented error body: `{"error": {"code", "message", ...}}`."""
    code = code or ERROR_CODES.get(status, "internal_server_error")
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


def _int_param(query: Any, *names: str) -> int | None:
    """The first of `names` present in the query, as a non-negative integer."""
    for name in names:
        raw = query.get(name)
        if raw is not None:
            if not raw.isdigit() or (name == "limit" and int(raw) < 1):
                raise ValueError(f"Invalid `{name}` query parameter: {raw}")
            return int(raw)
    return None
