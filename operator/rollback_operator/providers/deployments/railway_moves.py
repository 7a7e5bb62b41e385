"""How the Railway adapter asks for a new deployment and tells its own from anyone else's.

Why this module exists: `deploymentRollback` answers a bare Boolean (docs/providers.md#R12), so
the deployment it makes has to be found by listing, and a deployment someone else makes
meanwhile (a CI deploy landing mid-rollback) must never be taken for it: the step would succeed
with new code live. Before asking, the newest deployment is recorded in the step's journal; the
deployments created after it are newcomers. The rollback's own is the newcomer carrying the
target's build `meta`, or, right after asking, the only newcomer (a rollback's `meta` is not
documented, R21); anything else is ambiguous and fails the step naming every newcomer. Once its
own deployment is live, any other newcomer still on its way or live fails the step too (it
would replace the rollback, or has); one that ended badly is named in the result as a warning.

A deployment created before the marker that is still on its way (a CI deploy of the bad release
still building) is no newcomer, yet it replaces the rollback's deployment when it finishes
(R24). So whatever its age, any deployment but the rollback's own that is on its way fails the
step naming it: before asking, from the list the request reads anyway (no request of its own,
no journal record, so a redo judges it afresh), and again once the rollback's own is live, from
the list that looks for newcomers (one may have set off meanwhile, approved say).

The deployment found is recorded in the journal too, by a write that runs while the adapter
waits for the deployment and has landed before the step ends: a crash before it lands finds
the deployment again as a newcomer, as a crash right after asking always did.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from rollback_operator.providers import errors
from rollback_operator.providers.base import Journal
from rollback_operator.providers.deployments.pacing import Pacing
from rollback_operator.providers.deployments.railway_api import (
    ACTIVE,
    ENDED_BADLY,
    ON_ITS_WAY,
    ROLLBACK,
    Json,
    RailwayApi,
    Session,
)


@dataclass(frozen=True)
class Keys:
    """The journal keys of one kind of request for a new deployment."""

    newest_before: str
    made: str


ROLLBACK_KEYS = Keys("newestBefore", "deploymentId")
RESUME_KEYS = Keys("resumeNewestBefore", "resumedDeploymentId")


@dataclass(frozen=True)
class Made:
    """The rollback's own deployment, live, and the other newcomers that ended badly."""

    id: str
    others: tuple[str, ...] = ()  # "id (STATUS)"

    @property
    def note(self) -> str:
        """A warning naming the other newcomers, for the step's message ("" when none)."""
        if not self.others:
            return ""
        return (
            f"; warning: deployment {', '.join(self.others)} also appeared while it ran "
            "(a concurrent deploy?) and serves nothing"
        )

    @property
    def ids(self) -> dict[str, str]:
        """External ids naming the other newcomers, if any."""
        return {"concurrentDeployments": ", ".join(self.others)} if self.others else {}


class Moves:
    """Requests for a deployment of a service, each once per journal, and their outcome."""

    def __init__(self, api: RailwayApi, pacing: Pacing) -> None:
        self._api, self._pacing = api, pacing

    async def rollback_to(
        self, s: Session, operation: str, target: Json, journal: Journal, keys: Keys
    ) -> Made:
        """A rollback to `target`, asked for once per journal; its deployment, live and alone."""
        made = journal.recorded.get(keys.made)
        saving = None
        if made is None:
            made, saving = await self._request(s, operation, target, journal, keys)
        try:
            try:
                await self._await_success(s, operation, made, target["id"])
            finally:
                if saving is not None:
                    await saving
        except errors.PermanentError:
            await self.alone(s, operation, made, journal, keys)  # names who took over, if any
            raise
        return await self.alone(s, operation, made, journal, keys)

    async def alone(
        self, s: Session, operation: str, made: str, journal: Journal, keys: Keys
    ) -> Made:
        """`made`, unless another deployment made since the request is on its way or live, or
        one of any age is on its way."""
        before = journal.recorded.get(keys.newest_before)
        listed = await self._listed(s, operation, fresh=True)
        new = [] if before is None else await self._after(s, operation, listed, before)
        others = [d for d in new if d["id"] != made]
        threats = [d for d in others if d["status"] not in ENDED_BADLY]
        if threats:
            raise self._not_ours(
                operation, threats, f"was made while the rollback ran and is not its {made} "
                "(a concurrent deploy?): it serves, or will replace the rollback's when it "
                "succeeds; cancel it or roll it back in Railway, then run the rollback again",
            )  # fmt: skip
        self._none_under_way(operation, listed, made)
        return Made(made, tuple(_label(d) for d in others))

    async def unopposed(self, s: Session, operation: str) -> list[Json]:
        """The service's newest deployments as this session last listed them, when none of
        them is on its way; else the step's failure naming those that are."""
        listed = await self._listed(s, operation)
        self._none_under_way(operation, listed)
        return listed

    async def _request(
        self, s: Session, operation: str, target: Json, journal: Journal, keys: Keys
    ) -> tuple[str, asyncio.Task[None]]:
        """The deployment of a rollback to `target`, asked for unless an earlier attempt did,
        and the journal's write of it, under way: the wait for the deployment need not wait
        for the write, but the caller awaits it before it returns."""
        before = journal.recorded.get(keys.newest_before)
        if before is not None:
            made = await self._claim(s, operation, target, before, asked=False)
            if made is not None:
                return made, _record_soon(journal, **{keys.made: made})
        listed = await self.unopposed(s, operation)  # the list just read: no request
        if before is None:
            newest = max(listed, key=_at, default=None)
            before = str(newest["id"]) if newest else ""
            await journal.record(**{keys.newest_before: before})
        await self._api.gql(s, operation, ROLLBACK, {"id": target["id"]}, idempotent=False)
        appearing = self._pacing.wait(self._api.http, self._pacing.appear_deadline)
        late = f"{operation}: Railway took the rollback but no new deployment appeared"
        while (made := await self._claim(s, operation, target, before, asked=True)) is None:
            await appearing.next(late)
        return made, _record_soon(journal, **{keys.made: made})

    async def _claim(
        self, s: Session, operation: str, target: Json, before: str, *, asked: bool
    ) -> str | None:
        """The rollback's deployment among those made after `before`; None when there is none.

        `asked`: this attempt just asked for it, so a single newcomer is its own even when its
        `meta` differs from the target's; after a restart that is not known.
        """
        new = await self._since(s, operation, before)
        if not new:
            return None
        meta = target.get("meta")
        same = [d for d in new if meta and d.get("meta") == meta]
        if len(same) == 1:
            return str(same[0]["id"])
        if len(new) == 1 and asked:
            return str(new[0]["id"])
        raise self._not_ours(
            operation, new, f"appeared after the rollback to {target['id']} was asked for, and "
            "which is the rollback's cannot be told (a concurrent deploy?); none is taken for "
            "it: look at the service's deployments in Railway",
        )  # fmt: skip

    def _not_ours(
        self, operation: str, newcomers: list[Json], account: str
    ) -> errors.ProviderError:
        """The step's failure over `newcomers` not taken for the rollback's own deployment;
        `account` says what they did and what a person should do."""
        listed = ", ".join(_label(d) for d in newcomers)
        message = f"{operation}: deployment {listed} {account}"
        return self._api.error(message, errors.PermanentError)

    def _none_under_way(self, operation: str, listed: list[Json], own: str = "") -> None:
        """The step's failure when a deployment on `listed` other than `own` is on its way:
        when it finishes it replaces the rollback's, however old it is (R24)."""
        under_way = [d for d in listed if d["status"] in ON_ITS_WAY and d["id"] != own]
        if under_way:
            it = "it" if len(under_way) == 1 else "them"
            raise self._not_ours(
                operation, under_way, "started before the rollback and would replace the "
                f"rollback's deployment when it finishes: cancel {it} in Railway "
                "(deploymentCancel) and run the rollback again",
            )  # fmt: skip

    async def _listed(self, s: Session, operation: str, *, fresh: bool = False) -> list[Json]:
        """The service's newest deployments (the list's first page); unless `fresh`, as this
        session last listed them, if it did."""
        page = await self._api.page(s, operation, None, fresh=fresh)
        return [e["node"] for e in page["edges"]]

    async def _since(self, s: Session, operation: str, before: str) -> list[Json]:
        """The service's deployments created after `before` (every one when `before` is ""),
        as Railway lists them now (a fresh read: it looks for what changed)."""
        listed = await self._listed(s, operation, fresh=True)
        return await self._after(s, operation, listed, before)

    async def _after(
        self, s: Session, operation: str, listed: list[Json], before: str
    ) -> list[Json]:
        """Those of `listed` created after `before` (every one when `before` is "")."""
        if not before:
            return listed
        marker = next((n for n in listed if n["id"] == before), None)
        marker = marker or await self._api.deployment(s, operation, before)
        return [n for n in listed if _at(n) > _at(marker)]

    async def _await_success(self, s: Session, operation: str, new: str, to: str) -> None:
        """Once `new` (a rollback to `to`) is active; an error when it ended badly.

        The first look is at `new` as this session last saw it (the list that found it, read
        a moment ago), so a build still running costs no read before the first poll interval;
        every later look is a fresh read."""
        wait = self._pacing.wait(self._api.http)
        status = (await self._api.deployment(s, operation, new))["status"]
        while status not in ACTIVE:
            if status in ENDED_BADLY:
                message = f"{operation}: deployment {new} (rollback to {to}) ended {status}"
                raise self._api.error(message, errors.PermanentError)
            late = (
                f"{operation}: deployment {new} (rollback to {to}) still {status} "
                f"after {wait.seconds:g}s"
            )
            await wait.next(late)
            status = (await self._api.deployment(s, operation, new, fresh=True))["status"]


def _record_soon(journal: Journal, **ids: str) -> asyncio.Task[None]:
    """`journal.record(**ids)`, started now and awaited later (docs on `Journal.record`)."""
    return asyncio.ensure_future(journal.record(**ids))


def _label(deployment: Json) -> str:
    """A deployment as a message names it: "id (STATUS)"."""
    return f"{deployment['id']} ({deployment['status']})"


def _at(dep: Json) -> datetime:
    """When a deployment was created (Railway's ISO 8601 with a Z)."""
    return datetime.fromisoformat(str(dep["createdAt"]))
