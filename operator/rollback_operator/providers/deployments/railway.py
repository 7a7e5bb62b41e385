"""The backend as a Railway service in one environment: plan, rollback, replicas off and on.

Why this module exists: it is the `DeploymentTarget` for Railway, the runbook's `railway
rollback` as calls to Railway's public GraphQL API that look before they act. Railway answers
most failures as HTTP 200 with an `errors` array (docs/providers.md#R4), so every answer is
inspected, and the messages are mapped to the error hierarchy (R5).

Railway facts this module relies on (docs/providers.md, R1-R21): deployments list newest first
as a Relay connection (R8, R9: implied, not documented); a deployment superseded by a newer one
reads REMOVED but keeps `canRollback`, so REMOVED counts as "was good" when looking for the last
good deployment (R11); `deploymentRollback` returns a bare Boolean, so the deployment it creates
is found by listing again, then polled to SUCCESS (R12). Replicas are read and written through
`serviceInstance` and `serviceInstanceUpdate` (R14, R15; see R16-R19 on when a change applies).

What this adapter remembers in memory, per idempotency key, is what Railway cannot tell it:
the replica count it found before scaling to zero, and the deployment a rollback created. A
retried step in the same process therefore never stacks a second rollback or records 0 as the
count to restore. After an operator restart it falls back on what Railway shows: a live
deployment with the same build `meta` as the target counts as already rolled back (R21).
Multi-region services are out of scope: `numReplicas` is the single-region setting (R14).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from rollback_operator.api import targets
from rollback_operator.api.rollback import DeploymentPlan
from rollback_operator.providers import errors, http
from rollback_operator.providers.base import Candidate, Journal, StepResult
from rollback_operator.providers.context import BuildContext
from rollback_operator.providers.deployments.pacing import Pacing

Json = dict[str, Any]
NODE = "id status createdAt canRollback meta serviceId environmentId"


@dataclass(frozen=True)
class Gql:
    """One GraphQL document and the root field whose answer it wants."""

    field: str
    text: str


LIST = Gql(
    "deployments",
    f"""
query Deployments($input: DeploymentListInput!, $first: Int, $after: String) {{
  deployments(input: $input, first: $first, after: $after) {{
    edges {{ node {{ {NODE} }} }} pageInfo {{ hasNextPage endCursor }} }} }}""",
)
ONE = Gql("deployment", f"query Deployment($id: String!) {{ deployment(id: $id) {{ {NODE} }} }}")
INSTANCE = Gql(
    "serviceInstance",
    """
query Instance($serviceId: String!, $environmentId: String!) {
  serviceInstance(serviceId: $serviceId, environmentId: $environmentId) { numReplicas } }""",
)
ROLLBACK = Gql(
    "deploymentRollback", "mutation Rollback($id: String!) { deploymentRollback(id: $id) }"
)
SCALE = Gql(
    "serviceInstanceUpdate",
    """
mutation Scale($serviceId: String!, $environmentId: String, $input: ServiceInstanceUpdateInput!) {
  serviceInstanceUpdate(serviceId: $serviceId, environmentId: $environmentId, input: $input) }""",
)
ACTIVE = frozenset({"SUCCESS", "SLEEPING"})
WAS_GOOD = frozenset({"SUCCESS", "SLEEPING", "REMOVING", "REMOVED"})
ENDED_BADLY = frozenset({"FAILED", "CRASHED", "REMOVED", "REMOVING", "SKIPPED"})
_ERRORS: tuple[tuple[tuple[str, ...], type[errors.ProviderError]], ...] = (
    (("not authorized", "project token not found", "two factor"), errors.UnauthorizedError),
    (("rate limit", "too many requests"), errors.RateLimitedError),
    (("not found",), errors.NotFoundError),
)


PACING = Pacing(poll_interval=2.0, deadline=600.0, appear_deadline=30.0, page_size=50, max_pages=20)
"""A Railway rollback is a new deployment: a build that may take minutes to go live."""


class RailwayService:
    """`DeploymentTarget` for one Railway service in one environment."""

    def __init__(
        self,
        config: targets.RailwayTarget,
        token: str,
        options: http.Options | None = None,
        pacing: Pacing = PACING,
    ) -> None:
        url = urlsplit(config.api_url)
        auth = (
            {"Authorization": f"Bearer {token}"} if config.token_type == "account"
            else {"Project-Access-Token": token}
        )  # fmt: skip
        self._http = http.Http("railway", f"{url.scheme}://{url.netloc}", auth, options)
        self._path = url.path or "/"
        self._instance = {"serviceId": config.service_id, "environmentId": config.environment_id}
        self._where = {"projectId": config.project_id, **self._instance}
        self._pacing = pacing

    async def plan(self, pin: str | None) -> DeploymentPlan:
        async with self._http.session() as s:
            live = await self._live(s, "plan")
            to = await self._check_pin(s, pin, live) if pin else await self._last_good(s, live)
            replicas = await self._replicas(s, "plan")
        return DeploymentPlan.model_validate(
            {"from": live["id"] if live else None, "to": to, "replicas": replicas}
        )

    async def rollback(self, to: str, key: str, journal: Journal) -> StepResult:
        async with self._http.session() as s:
            live = await self._live(s, "rollback")
            target = await self._deployment(s, "rollback", to)
            made = journal.recorded.get("deploymentId")
            if live and live["status"] != "CRASHED" and self._serves(live, target, made):
                ids = {"deploymentId": live["id"], "rolledBackTo": to}
                return StepResult(f"{live['id']} already serves {to}; nothing to do", ids)
            newest_before = journal.recorded.get("newestBefore")
            if made is None and newest_before is not None:
                made = await self._new_since(s, newest_before, wait=False)
                if made is not None:
                    await journal.record(deploymentId=made)
            if made is None:
                made = await self._request(s, to, journal)
            new = await self._await_success(s, made, to)
        return StepResult(
            f"{new} (rollback to {to}) is live", {"deploymentId": new, "rolledBackTo": to}
        )

    async def stop_traffic(self, key: str, plan: DeploymentPlan) -> StepResult:
        async with self._http.session() as s:
            replicas = await self._replicas(s, "stop traffic")
            if replicas == 0:
                return StepResult("already at 0 replicas")
            await self._scale(s, "stop traffic", 0)
        return StepResult(f"scaled from {replicas} replicas to 0", {"replicas": str(replicas)})

    async def resume_traffic(self, key: str, plan: DeploymentPlan) -> StepResult:
        want = plan.replicas
        if want is None:
            return StepResult("the plan recorded no replica count; left as it is")
        if want == 0:
            return StepResult("the service had 0 replicas before the rollback; left at 0")
        async with self._http.session() as s:
            if await self._replicas(s, "resume traffic") == want:
                return StepResult(f"already at {want} replicas")
            await self._scale(s, "resume traffic", want)
        return StepResult(f"scaled back to {want} replicas", {"replicasRestored": str(want)})

    async def candidates(self, limit: int) -> list[Candidate]:
        async with self._http.session() as s:
            live = await self._live(s, "candidates")
            default = await self._good_before(s, live, "candidates")
            marked = {d["id"] for d in (live, default) if d is not None}
            listed = await self._newest(s, limit, marked)
        return [_candidate(dep, live, default) for dep in listed]

    # ----- plan -----

    async def _live(self, s: http.Session, operation: str) -> Json | None:
        """The active deployment; else the newest one that crashed (it was live until then)."""
        active = await self._find(s, operation, lambda d: d["status"] in ACTIVE)
        return active or await self._find(s, operation, lambda d: d["status"] == "CRASHED")

    async def _check_pin(self, s: http.Session, pin: str, live: Json | None) -> str:
        try:
            dep = await self._deployment(s, "plan", pin)
        except errors.NotFoundError:
            message = f"plan: pinned deployment {pin} not found"
            raise self._http.error(message, errors.NotFoundError) from None
        problem = self._pin_problem(dep, live)
        if problem:
            raise self._http.error(
                f"plan: pinned deployment {pin} {problem}", errors.PermanentError
            )
        return pin

    def _pin_problem(self, dep: Json, live: Json | None) -> str | None:
        if any(dep.get(k) != v for k, v in self._instance.items()):
            return "belongs to another service or environment"
        if live is not None and dep["id"] == live["id"]:
            return None
        if dep["status"] not in WAS_GOOD:
            return f"is {dep['status']}, not a deployment that was live"
        return None if dep.get("canRollback") else "cannot be rolled back to (canRollback false)"

    async def _last_good(self, s: http.Session, live: Json | None) -> str:
        """What `_good_before` finds; NotFoundError when there is none."""
        found = await self._good_before(s, live, "plan")
        if found is None:
            where = f"before the live one {live['id']}" if live else "at all"
            message = f"plan: no earlier deployment that can be rolled back to {where}"
            raise self._http.error(message, errors.NotFoundError)
        return str(found["id"])

    async def _good_before(self, s: http.Session, live: Json | None, operation: str) -> Json | None:
        """The newest deployment before `live` that was good and can be rolled back to."""
        passed = live is None

        def good(dep: Json) -> bool:
            nonlocal passed
            if not passed:
                passed = dep["id"] == live["id"] if live else True
                return False
            return dep["status"] in WAS_GOOD and bool(dep.get("canRollback"))

        return await self._find(s, operation, good)

    async def _newest(self, s: http.Session, limit: int, marked: set[str]) -> list[Json]:
        """The newest `limit` deployments of the service, and those of `marked` further down."""
        listed: list[Json] = []

        def take(dep: Json) -> bool:
            if len(listed) < limit or dep["id"] in marked:
                listed.append(dep)
            return len(listed) >= limit and marked <= {d["id"] for d in listed}

        await self._find(s, "candidates", take)
        return listed

    async def _find(
        self, s: http.Session, operation: str, wanted: Callable[[Json], bool]
    ) -> Json | None:
        """The first deployment of the service, newest first, that `wanted` accepts."""
        after: str | None = None
        for _ in range(self._pacing.max_pages):
            page = await self._page(s, operation, after)
            found = next((e["node"] for e in page["edges"] if wanted(e["node"])), None)
            info = page.get("pageInfo") or {}
            after = info.get("endCursor") if info.get("hasNextPage") else None
            if found is not None or after is None:
                return found
        message = f"{operation}: nothing suitable in the newest {self._pacing.max_pages} pages"
        raise self._http.error(message + "; pin the deployment", errors.PermanentError)

    # ----- rollback -----

    def _serves(self, live: Json, target: Json, made: str | None) -> bool:
        """Whether the live deployment is `target`, its rollback copy, or the same build."""
        if live["id"] in (target["id"], made):
            return True
        meta = target.get("meta")
        return bool(meta) and meta == live.get("meta") and live["createdAt"] > target["createdAt"]

    async def _request(self, s: http.Session, to: str, journal: Journal) -> str:
        edges = (await self._page(s, "rollback", None))["edges"]
        newest = str(edges[0]["node"]["id"]) if edges else ""
        await journal.record(newestBefore=newest)
        await self._gql(s, "rollback", ROLLBACK, {"id": to}, idempotent=False)
        made = await self._new_since(s, newest, wait=True)
        assert made is not None
        await journal.record(deploymentId=made)
        return made

    async def _new_since(self, s: http.Session, newest_before: str, *, wait: bool) -> str | None:
        """The deployment listed above `newest_before` (waiting for it to appear if asked)."""
        opts = self._http.options
        deadline = opts.clock() + self._pacing.appear_deadline
        while True:
            edges = (await self._page(s, "rollback", None))["edges"]
            newest = str(edges[0]["node"]["id"]) if edges else ""
            new = newest if newest and newest != newest_before else None
            if new is not None or not wait:
                return new
            if opts.clock() >= deadline:
                message = "rollback: Railway accepted the rollback but no new deployment appeared"
                raise self._http.error(message, errors.RetryableError)
            await opts.sleep(self._pacing.poll_interval)

    async def _await_success(self, s: http.Session, new: str, to: str) -> str:
        opts, pacing = self._http.options, self._pacing
        deadline = opts.clock() + pacing.deadline
        while True:
            status = (await self._deployment(s, "rollback", new))["status"]
            if status in ACTIVE:
                return new
            if status in ENDED_BADLY:
                message = f"rollback: deployment {new} (rollback to {to}) ended {status}"
                raise self._http.error(message, errors.PermanentError)
            if opts.clock() >= deadline:
                message = (
                    f"rollback: deployment {new} (rollback to {to}) still {status} "
                    f"after {pacing.deadline:g}s"
                )
                raise self._http.error(message, errors.RetryableError)
            await opts.sleep(pacing.poll_interval)

    # ----- GraphQL -----

    async def _page(self, s: http.Session, operation: str, after: str | None) -> Json:
        variables = {"input": self._where, "first": self._pacing.page_size, "after": after}
        page = (await self._gql(s, operation, LIST, variables))["deployments"]
        return dict(page)

    async def _deployment(self, s: http.Session, operation: str, deployment_id: str) -> Json:
        return dict((await self._gql(s, operation, ONE, {"id": deployment_id}))["deployment"])

    async def _replicas(self, s: http.Session, operation: str) -> int:
        """The service's replica count; Railway's null means its default of one."""
        found = (await self._gql(s, operation, INSTANCE, self._instance))["serviceInstance"]
        return 1 if found["numReplicas"] is None else int(found["numReplicas"])

    async def _scale(self, s: http.Session, operation: str, replicas: int) -> None:
        variables = {**self._instance, "input": {"numReplicas": replicas}}
        await self._gql(s, operation, SCALE, variables)

    async def _gql(
        self,
        s: http.Session,
        operation: str,
        query: Gql,
        variables: Json,
        *,
        idempotent: bool = True,
    ) -> Json:
        """`data` of a GraphQL answer; its `errors` (even inside HTTP 200) raised as ours."""
        body = {"query": query.text, "variables": variables}
        call = http.Call(operation, "POST", self._path, None, body, query.field, idempotent)
        answer = await http.json_object(s, call)
        if answer.get("errors"):
            raise self._graphql_error(call, answer["errors"])
        data = answer.get("data")
        if not isinstance(data, dict) or data.get(query.field) is None:
            message = f"{operation}: {call.describe()}: answer has no data"
            raise self._http.error(message, errors.PermanentError)
        return data

    def _graphql_error(self, call: http.Call, listed: Any) -> errors.ProviderError:
        text = "; ".join(http.graphql_messages(listed if isinstance(listed, list) else [listed]))
        text = text[:300]
        kind = next((k for words, k in _ERRORS if any(w in text.lower() for w in words)), None)
        message = f"{call.operation}: {call.describe()}: {text}"
        return self._http.error(message, kind or errors.PermanentError)


def _candidate(dep: Json, live: Json | None, default: Json | None) -> Candidate:
    """A deployment as a candidate; its note is the commit, as `railway deployments` shows."""
    meta: Json = dep["meta"] if isinstance(dep.get("meta"), dict) else {}
    commit = str(meta.get("commitHash") or "")[:7]
    message = str(meta.get("commitMessage") or "").partition("\n")[0][:60]
    created = dep.get("createdAt")
    return Candidate(
        id=str(dep["id"]),
        created_at=datetime.fromisoformat(created) if isinstance(created, str) else None,
        state=str(dep.get("status") or "?"),
        live=live is not None and dep["id"] == live["id"],
        default=default is not None and dep["id"] == default["id"],
        note=f"{commit} {message}".strip(),
    )


async def build(config: targets.RailwayTarget, context: BuildContext) -> RailwayService:
    """The adapter of a policy's `targets.backend.railway` block."""
    return RailwayService(config, await context.secret(config.token_secret_ref))
