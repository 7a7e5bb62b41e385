"""The backend as a Railway service in one environment: plan, rollback, stop and resume traffic.

Why this module exists: it is the `DeploymentTarget` for Railway, the runbook's `railway
rollback` and "stop the backend" as calls to Railway's public GraphQL API (`railway_api`)
that look before they act.

Railway facts this module relies on (docs/providers.md, R1-R24): deployments list newest first
(R8, R9: implied, not documented); a deployment superseded by a newer one reads REMOVED but
keeps `canRollback`, so REMOVED counts as "was good" when looking for the last good deployment
(R11); `deploymentRollback` returns a bare Boolean, so the deployment it creates is found by
listing again, then polled to SUCCESS (R12), and told apart from a deployment someone else
made meanwhile, or from a deployment already on its way that would replace it when it
finishes (`railway_moves`, R24). Traffic is stopped with `deploymentStop` on every
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

from datetime import datetime

from rollback_operator.api import targets
from rollback_operator.api.rollback import DeploymentPlan
from rollback_operator.providers import errors, http
from rollback_operator.providers.base import Candidate, Journal, StepResult
from rollback_operator.providers.context import BuildContext
from rollback_operator.providers.deployments.pacing import Pacing
from rollback_operator.providers.deployments.railway_api import (
    ACTIVE,
    ON_ITS_WAY,
    STOP,
    WAS_GOOD,
    Json,
    RailwayApi,
    Session,
    gone,
    serves,
)
from rollback_operator.providers.deployments.railway_moves import (
    RESUME_KEYS,
    ROLLBACK_KEYS,
    Made,
    Moves,
)

PACING = Pacing(poll_interval=2.0, deadline=600.0, appear_deadline=30.0, page_size=50, max_pages=20)
"""A Railway rollback is a new deployment: a build that may take minutes to go live."""
RESUMED_FROM = "resumedFrom"
"""Journal key: the stopped deployment resume-traffic brings back."""
STOP_ROUNDS = 3
"""Times stop-traffic looks again for a deployment that began serving while it stopped others."""


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
        self._moves = Moves(self._api, pacing)
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
                done = Made(live["id"])
                if made is not None and made == live["id"]:
                    done = await self._moves.alone(s, "rollback", made, journal, ROLLBACK_KEYS)
                else:
                    await self._moves.unopposed(s, "rollback")  # what serves may not for long
                ids = {"deploymentId": done.id, "rolledBackTo": to, **done.ids}
                return StepResult(f"{done.id} already serves {to}; nothing to do{done.note}", ids)
            done = await self._moves.rollback_to(s, "rollback", target, journal, ROLLBACK_KEYS)
        ids = {"deploymentId": done.id, "rolledBackTo": to, **done.ids}
        return StepResult(f"{done.id} (rollback to {to}) is live{done.note}", ids)

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
            stopped = await self._stopped(s, active, journal)
            done = await self._moves.rollback_to(s, "resume traffic", stopped, journal, RESUME_KEYS)
        return StepResult(
            f"{done.id} serves again: a rollback to the stopped deployment {stopped['id']}, not "
            f"the latest source{done.note}",
            {RESUME_KEYS.made: done.id, **done.ids},
        )

    async def candidates(self, limit: int) -> list[Candidate]:
        async with self._api.session() as s:
            live = await self._live(s, "candidates")
            default = await self._good_before(s, live, "candidates")
            marked = {d["id"] for d in (live, default) if d is not None}
            listed = await self._newest(s, limit, marked)
        return [_candidate(dep, live, default) for dep in listed]

    # ----- plan -----

    async def _live(self, s: Session, operation: str) -> Json | None:
        """The active deployment, stopped or not; else the newest that crashed (it was live)."""
        active = await self._api.find(s, operation, lambda d: d["status"] in ACTIVE)
        return active or await self._api.find(s, operation, lambda d: d["status"] == "CRASHED")

    async def _check_pin(self, s: Session, pin: str, live: Json | None) -> str:
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

    async def _last_good(self, s: Session, live: Json | None) -> str:
        """What `_good_before` finds; NotFoundError when there is none."""
        found = await self._good_before(s, live, "plan")
        if found is None:
            where = f"before the live one {live['id']}" if live else "at all"
            message = f"plan: no earlier deployment that can be rolled back to {where}"
            raise self._api.error(message, errors.NotFoundError)
        return str(found["id"])

    async def _good_before(self, s: Session, live: Json | None, operation: str) -> Json | None:
        """The newest deployment before `live` that was good and can be rolled back to."""
        passed = live is None

        def good(dep: Json) -> bool:
            nonlocal passed
            if not passed:
                passed = dep["id"] == live["id"] if live else True
                return False
            return dep["status"] in WAS_GOOD and bool(dep.get("canRollback"))

        return await self._api.find(s, operation, good)

    async def _newest(self, s: Session, limit: int, marked: set[str]) -> list[Json]:
        """The newest `limit` deployments of the service, and those of `marked` further down."""
        listed: list[Json] = []

        def take(dep: Json) -> bool:
            if len(listed) < limit or dep["id"] in marked:
                listed.append(dep)
            return len(listed) >= limit and marked <= {d["id"] for d in listed}

        await self._api.find(s, "candidates", take)
        return listed

    # ----- traffic -----

    async def _stop_all(self, s: Session, operation: str) -> list[str]:
        """Stop every deployment that serves, and see their instances gone; their ids. A
        deployment on its way fails the step instead (before anything is stopped, if it was
        there from the start): when it finishes it serves, stopped traffic or not (R24)."""
        stopped: list[str] = []
        for _ in range(STOP_ROUNDS):
            listed = await self._api.every(s, operation, ACTIVE | ON_ITS_WAY, fresh=True)
            under_way = [d for d in listed if d["status"] in ON_ITS_WAY]
            if under_way:
                named = ", ".join(f"{d['id']} ({d['status']})" for d in under_way)
                message = (
                    f"{operation}: deployment {named} is on its way and will serve when it "
                    f"finishes, stopped traffic or not (stopped so far: {stopped or 'none'}): "
                    "cancel it in Railway (deploymentCancel) and run the rollback again"
                )
                raise self._api.error(message, errors.PermanentError)
            serving = [d for d in listed if serves(d)]
            if not serving:
                return stopped
            for dep in serving:
                await self._api.gql(s, operation, STOP, {"id": dep["id"]})
            stopped += [await self._await_stopped(s, operation, d["id"]) for d in serving]
        message = f"{operation}: deployments keep starting to serve (stopped {stopped})"
        raise self._api.error(message, errors.RetryableError)

    async def _await_stopped(self, s: Session, operation: str, deployment_id: str) -> str:
        wait = self._pacing.wait(self._api.http)
        while not gone(await self._api.deployment(s, operation, deployment_id, fresh=True)):
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

    async def _stopped(self, s: Session, active: list[Json], journal: Journal) -> Json:
        """The stopped deployment the service runs, to bring back (recorded in `journal`, so a
        redone resume brings back the same one); an error when there is none."""
        recorded = journal.recorded.get(RESUMED_FROM)
        if recorded is not None:
            return await self._api.deployment(s, "resume traffic", recorded)
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
        await journal.record(**{RESUMED_FROM: str(newest["id"])})
        return newest

    # ----- rollback -----

    def _serves(self, live: Json, target: Json, made: str | None) -> bool:
        """Whether the live deployment is `target`, its rollback copy, or the same build."""
        if live["id"] in (target["id"], made):
            return True
        meta = target.get("meta")
        return bool(meta) and meta == live.get("meta") and live["createdAt"] > target["createdAt"]


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
