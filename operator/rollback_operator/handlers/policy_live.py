"""One RollbackPolicy as an evaluation round sees it: status, Events, and its Rollbacks.

Implements `reconcile.evaluation.PolicyHost` on top of kopf's live body, the Kubernetes gateway
and the rollback index (`handlers.index`), which lists every Rollback by the policy it refers
to, with the targets it acts on (defaults applied, so a Rollback that has not planned yet still
counts), its phase, and the episode keys of an automatic one. Status writes are spared while
only rule values move (see `calm`): a thousand calm policies need not write a thousand times a
round.
Rule values, thresholds, breaches and suppressions are counted at each save (`telemetry.observe`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import kopf

from rollback_operator.api.policy import RollbackPolicy, RollbackPolicyStatus, RollbackRef
from rollback_operator.api.rules import Rule
from rollback_operator.handlers.deps import Deps
from rollback_operator.handlers.patching import StatusPatches
from rollback_operator.providers.base import Notice
from rollback_operator.providers.errors import ProviderError
from rollback_operator.reconcile.automatic import Announcement
from rollback_operator.reconcile.queue import RollbackEntry
from rollback_operator.telemetry import logs, observe

PLURAL = "rollbackpolicies"
REFRESH = timedelta(minutes=5)
"""How stale rule values and lastEvaluated may get in the stored status while all is calm."""
_READINGS = frozenset({"value", "lastEvaluated"})


def calm(old: dict[str, Any], new: dict[str, Any], now: datetime) -> bool:
    """Whether a write can wait: only rule values and evaluation times changed, and the stored
    ones are younger than REFRESH. Every state, episode, condition or counter change is
    written at once; this spares the API server (and every watcher) one write per policy per
    round while all is calm."""
    if _without_readings(old) != _without_readings(new):
        return False
    times = [r.get("lastEvaluated") for r in old.get("rules", [])]
    if not times or None in times:
        return False
    oldest = min(datetime.fromisoformat(str(t).replace("Z", "+00:00")) for t in times)
    return now - oldest < REFRESH


def _without_readings(status: dict[str, Any]) -> dict[str, Any]:
    rules = [{k: v for k, v in r.items() if k not in _READINGS} for r in status.get("rules", [])]
    return {**status, "rules": rules}


class _Once:
    """A journal for one announcement (its key already makes it one per episode and state)."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    @property
    def recorded(self) -> dict[str, str]:
        return dict(self._ids)

    async def record(self, **ids: str) -> None:
        self._ids.update(ids)


class LivePolicy:
    """The evaluation's PolicyHost for one RollbackPolicy object."""

    def __init__(self, body: kopf.Body, deps: Deps, rollbacks: Any) -> None:
        self.body, self.deps = body, deps
        self._namespace = body.metadata.namespace or ""
        self._name = body.metadata.name or ""
        self._rollbacks = rollbacks
        saved = dict(body.get("status", {}))
        self._status = StatusPatches(deps.kube, PLURAL, self._namespace, self._name, saved)
        self._uid = body.metadata.uid or ""
        self._telemetry = deps.telemetry
        logs.bind_policy(self._namespace, self._name)

    async def save(self, status: RollbackPolicyStatus) -> None:
        wire = status.wire()
        self._count_start()
        if not calm(self._status.saved, wire, self.deps.clock.now()):
            await self._status.write(wire)
        observe.record_policy(self._telemetry, self._uid, self._namespace, self._name, status)

    def _count_start(self) -> None:
        """Before the first count: what the stored status already holds, and the thresholds."""
        if self._uid not in self._telemetry.policies:
            stored = RollbackPolicyStatus.model_validate(self._status.saved)
            observe.start_policy(self._telemetry, self._uid, stored)
        generation = int(self.body.metadata.get("generation") or 1)
        if observe.thresholds_stale(self._telemetry, self._uid, generation):
            rules = [Rule.model_validate(r) for r in self.body.get("spec", {}).get("rules", [])]
            observe.set_thresholds(
                self._telemetry, self._uid, self._namespace, self._name, generation, rules
            )

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        kopf.event(
            self.body, type="Warning" if warning else "Normal", reason=reason, message=message
        )

    async def notify(self, policy: RollbackPolicy, news: Announcement) -> None:
        spec = policy.spec.automatic_rollback
        notice = Notice(
            kind="breach", namespace=self._namespace, name=self._name,
            uid=self.body.metadata.uid or "", mode=spec.mode,
            targets=tuple(t.value for t in spec.targets), reason=f"{news.rule}: {news.message}",
            phase=news.state.value, summary=news.message, trigger="policy",
        )  # fmt: skip
        try:
            notifiers = await self.deps.providers.notifiers(policy, self.deps.kube)
            for notifier in notifiers:
                await notifier.notify(notice, f"{self.body.metadata.uid}/{news.key}", _Once())
        except ProviderError as error:
            message = f"{news.rule}: could not notify: {error}"
            await self.event(warning=True, reason="NotificationFailed", message=message)

    def active_rollback(self, targets: frozenset[str]) -> str | None:
        found = [r for r in self._seen() if r.active and r.targets & targets]
        return min(found, key=lambda r: (r.created, r.name)).name if found else None

    def existing_rollback(self, episodes: set[str]) -> RollbackRef | None:
        for seen in self._seen():
            if seen.episodes & episodes:
                return RollbackRef(name=seen.name, time=self._time(seen.created))
        return None

    async def create_rollback(self, body: dict[str, Any]) -> RollbackRef:
        created = await self.deps.kube.create("rollbacks", self._namespace, body)
        meta = created.get("metadata", {})
        return RollbackRef(name=meta.get("name", ""), time=self._time(""))

    def _seen(self) -> list[RollbackEntry]:
        if self._rollbacks is None:
            return []
        return list(self._rollbacks.get((self._namespace, self._name), []))

    def _time(self, text: str) -> datetime:
        """A creation timestamp, or now (this clock) when there is none."""
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return self.deps.clock.now()
