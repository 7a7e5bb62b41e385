"""The backend as a Railway service in one environment: plan, rollback, stop and resume traffic.

Why this module exists: it is the `DeploymentTarget` for Railway, the runbook's `railway
rollback` and "stop the backend" as calls to Railway's public GraphQL API (`railway_api`)
that look before they act.

Railway facts this module relies on (docs/providers.md, R1-R23): deployments list newest first
(R8, R9: implied, not documented); a deployment superseded by a newer one reads REMOVED but
keeps `canRollback`, so REMOVED counts as "was good" when looking for the last good deployment
(R11); `deploymentRollback` returns a bare Boolean, so the deployment it creates is found by
listing again, then polled to SUCCESS (R12). Traffic is stopped with `deploymentStop` on every
deployment that serves, and the stop is verified (`deploymentStopped`, no instance running),
because a replica change is only staged and applying it deploys the service's latest source
(R16-R18, R22). Traffic comes back by a rollback to the stopped deployment: its image and
variables, never the latest source (R12, R23).

What this adapter remembers, per idempotency key, it records in the step's journal: the newest
deployment before it asked for a new one, and the deployment that request made, so a retried or
redone step never stacks a second rollback. After an operator restart without them it falls
back on what Railway shows: a live deployment with the same build `meta` as the target counts
as already rolled back (R21).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollback_operator.api import targets
from rollback_operator.api.rollback import DeploymentPlan
from rollback_operator.providers import errors, http
from rollback_operator.providers.base import Candidate, Journal, StepResult
from rollback_operator.providers.context import BuildContext
from rollback_operator.providers.deployments.pacing import Pacing
from rollback_operator.providers.deployments.railway_api import (
    ACTIVE,
    ENDED_BADLY,
    ROLLBACK,
    STOP,
    WAS_GOOD,
    Json,
    RailwayApi,
    gone,
    serves,
)

PACING = Pacing(poll_interval=2.0, deadline=600.0, appear_deadline=30.0, page_size=50, max_pages=20)
"""A Railway rollback is a new deployment: a build that may take minutes to go live."""
STOP_ROUNDS = 3
"""Times stop-traffic looks again for a deployment that began serving while it stopped others."""


@dataclass(frozen=True)
class Keys:
    """The journal keys of one kind of request for a new deployment."""

    newest_before: str
    made: str


ROLLBACK_KEYS = Keys("newestBefore", "deploymentId")
RESUME_KEYS = Keys("resumeNewestBefore", "resumedDeploymentId")


class RailwayService:
    """`DeploymentTarget` for one Railway service in one environment."""

    def __init__(
        self,
        config: targets.RailwayTarget,
        token: str,
        options: http.Options | None = None,
        pacing: Pacing = PACING,
    ) -> None:
        self._api = RailwayApi(config, token, options, pacing)
        self._instance = self._api.instance
        self._pacing = pacing

    async def plan(self, pin: str | None) -> DeploymentPlan:
        async with self._api.session() as s:
            live = await self._live(s, "plan")
            to = await self._check_pin(s, pin, live) if pin else await self._last_good(s, live)
        serving = None if live is None else not live.get("deploymentStopped")
        return DeploymentPlan.model_validate(
            {"from": live["id"] if live else None, "to": to, "serving": serving}
        )

    async def rollback(self, to: str, key: str, journal: Journal) -> StepResult:
        async with self._api.session() as s:
            live = await self._live(s, "rollback")
            target = await self._api.deployment(s, "rollback", to)
            made = journal.recorded.get(ROLLBACK_KEYS.made)
            if live and live["status"] != "CRASHED" and self._serves(live, target, made):
                ids = {"deploymentId": live["id"], "rolledBackTo": to}
                return StepResult(f"{live['id']} already serves {to}; nothing to do", ids)
            made = made or await self._request(s, "rollback", to, journal, ROLLBACK_KEYS)
            new = await self._await_success(s, "rollback", made, to)
        return StepResult(
            f"{new} (rollback to {to}) is live", {"deploymentId": new, "rolledBackTo": to}
        )

    async def stop_traffic(self, key: str, plan: DeploymentPlan) -> StepResult:
        async with self._api.session() as s:
            stopped = await self._stop_all(s, "stop traffic")
        if not stopped:
            return StepResult("already stopped: no deployment of the service serves")
        ids = ", ".join(stopped)
        return StepResult(
            f"stopped deployment {ids}: none of its instances runs", {"stoppedDeployments": ids}
        )

    async def resume_traffic(self, key: str, plan: DeploymentPlan, journal: Journal) -> StepResult:
        if plan.serving is False:
            return await self._keep_stopped()
        async with self._api.session() as s:
            made = journal.recorded.get(RESUME_KEYS.made)
            active = await self._api.every(s, "resume traffic", ACTIVE)
            up = [d["id"] for d in active if serves(d)]
            if up and made is None:
                return StepResult(f"{', '.join(up)} serves traffic; nothing to do")
            if made is None:
                stopped = await self._stopped(s, active)
                made = await self._request(s, "resume traffic", stopped, journal, RESUME_KEYS)
            await self._await_success(s, "resume traffic", made, "the stopped deployment")
        return StepResult(
            f"{made} serves again: a rollback to the stopped deployment, not the latest source",
            {RESUME_KEYS.made: made},
        )

    async def candidates(self, limit: int) -> list[Candidate]:
        async with self._api.session() as s:
            live = await self._live(s, "candidates")
            default = await self._good_before(s, live, "candidates")
            marked = {d["id"] for d in (live, default) if d is not None}
            listed = await self._newest(s, limit, marked)
        return [_candidate(dep, live, default) for dep in listed]

    # ----- plan -----

    async def _live(self, s: http.Session, operation: str) -> Json | None:
        """The active deployment, stopped or not; else the newest that crashed (it was live)."""
        active = await self._api.find(s, operation, lambda d: d["status"] in ACTIVE)
        return active or await self._api.find(s, operation, lambda d: d["status"] == "CRASHED")

    async def _check_pin(self, s: http.Session, pin: str, live: Json | None) -> str:
        try:
            dep = await self._api.deployment(s, "plan", pin)
        except errors.NotFoundError:
            message = f"plan: pinned deployment {pin} not found"
            raise self._api.error(message, errors.NotFoundError) from None
        problem = self._pin_problem(dep, live)
        if problem:
            raise self._api.error(f"plan: pinned deployment {pin} {problem}", errors.PermanentError)
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
            raise self._api.error(message, errors.NotFoundError)
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

        return await self._api.find(s, operation, good)

    async def _newest(self, s: http.Session, limit: int, marked: set[str]) -> list[Json]:
        """The newest `limit` deployments of the service, and those of `marked` further down."""
        listed: list[Json] = []

        def take(dep: Json) -> bool:
            if len(listed) < limit or dep["id"] in marked:
                listed.append(dep)
            return len(listed) >= limit and marked <= {d["id"] for d in listed}

        await self._api.find(s, "candidates", take)
        return listed

    # ----- traffic -----

    async def _stop_all(self, s: http.Session, operation: str) -> list[str]:
        """Stop every deployment that serves, and see their instances gone; their ids."""
        stopped: list[str] = []
        for _ in range(STOP_ROUNDS):
            serving = [d for d in await self._api.every(s, operation, ACTIVE) if serves(d)]
            if not serving:
                return stopped
            for dep in serving:
                await self._api.gql(s, operation, STOP, {"id": dep["id"]})
            stopped += [await self._await_stopped(s, operation, d["id"]) for d in serving]
        message = f"{operation}: deployments keep starting to serve (stopped {stopped})"
        raise self._api.error(message, errors.RetryableError)

    async def _await_stopped(self, s: http.Session, operation: str, deployment_id: str) -> str:
        wait = self._pacing.wait(self._api.http)
        while not gone(await self._api.deployment(s, operation, deployment_id)):
            message = (
                f"{operation}: deployment {deployment_id} still has running instances "
                f"{wait.seconds:g}s after it was stopped"
            )
            await wait.next(message)
        return deployment_id

    async def _keep_stopped(self) -> StepResult:
        """Traffic stopped before the rollback stays stopped, the rollback's deployment too."""
        async with self._api.session() as s:
            stopped = await self._stop_all(s, "resume traffic")
        also = f"; stopped {', '.join(stopped)}" if stopped else ""
        return StepResult(f"the service served no traffic when planned; left stopped{also}")

    async def _stopped(self, s: http.Session, active: list[Json]) -> str:
        """The stopped deployment the service runs, to bring back; an error when there is none."""
        newest = max(active, key=lambda d: str(d["createdAt"]), default=None)
        if newest is None or not newest.get("deploymentStopped"):
            message = (
                "resume traffic: no deployment serves and none is stopped; roll the service "
                "back to a good deployment in Railway (never 'Deploy Latest Commit')"
            )
            raise self._api.error(message, errors.PermanentError)
        if not newest.get("canRollback"):
            message = (
                f"resume traffic: the stopped deployment {newest['id']} cannot be rolled back "
                "to (canRollback false); redeploy it in Railway (never 'Deploy Latest Commit')"
            )
            raise self._api.error(message, errors.PermanentError)
        return str(newest["id"])

    # ----- new deployments -----

    def _serves(self, live: Json, target: Json, made: str | None) -> bool:
        """Whether the live deployment is `target`, its rollback copy, or the same build."""
        if live["id"] in (target["id"], made):
            return True
        meta = target.get("meta")
        return bool(meta) and meta == live.get("meta") and live["createdAt"] > target["createdAt"]

    async def _request(
        self, s: http.Session, operation: str, to: str, journal: Journal, keys: Keys
    ) -> str:
        """A rollback to `to` (asked for once per journal); the deployment it made."""
        before = journal.recorded.get(keys.newest_before)
        if before is not None:
            made = await self._new_since(s, operation, before, wait=False)
            if made is not None:
                await journal.record(**{keys.made: made})
                return made
        edges = (await self._api.page(s, operation, None))["edges"]
        newest = str(edges[0]["node"]["id"]) if edges else ""
        await journal.record(**{keys.newest_before: newest})
        await self._api.gql(s, operation, ROLLBACK, {"id": to}, idempotent=False)
        made = await self._new_since(s, operation, newest, wait=True)
        assert made is not None
        await journal.record(**{keys.made: made})
        return made

    async def _new_since(
        self, s: http.Session, operation: str, newest_before: str, *, wait: bool
    ) -> str | None:
        """The deployment listed above `newest_before` (waiting for it to appear if asked)."""
        appearing = self._pacing.wait(self._api.http, self._pacing.appear_deadline)
        message = f"{operation}: Railway took the rollback but no new deployment appeared"
        while True:
            edges = (await self._api.page(s, operation, None))["edges"]
            newest = str(edges[0]["node"]["id"]) if edges else ""
            new = newest if newest and newest != newest_before else None
            if new is not None or not wait:
                return new
            await appearing.next(message)

    async def _await_success(self, s: http.Session, operation: str, new: str, to: str) -> str:
        """`new` once it is active; it was made by a rollback to `to`."""
        wait = self._pacing.wait(self._api.http)
        while True:
            status = (await self._api.deployment(s, operation, new))["status"]
            if status in ACTIVE:
                return new
            if status in ENDED_BADLY:
                message = f"{operation}: deployment {new} (rollback to {to}) ended {status}"
                raise self._api.error(message, errors.PermanentError)
            message = (
                f"{operation}: deployment {new} (rollback to {to}) still {status} "
                f"after {wait.seconds:g}s"
            )
            await wait.next(message)


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
