"""One Rollback as the engine sees it while it runs: records, Events, annotations, the queue.

Implements the engine's ports (Recorder, Controls, ReportStore) on top of kopf's live body and
the Kubernetes gateway. The body of a kopf daemon is a live view, so annotations set by people
(approve, abort, resume-traffic) are seen here without another API call. `save` is also where
finished steps and outcomes are counted and logged, once each (`telemetry.observe` says why).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from rollback_operator.api import (
    ABORT_ANNOTATION,
    API_VERSION,
    APPROVED_BY_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
)
from rollback_operator.api.rollback import RollbackStatus
from rollback_operator.handlers import index
from rollback_operator.handlers.deps import Deps
from rollback_operator.handlers.patching import StatusPatches
from rollback_operator.reconcile import queue, traffic, transitions
from rollback_operator.telemetry import observe

logger = logging.getLogger(__name__)
PLURAL = "rollbacks"
DEPLOYMENT_LOG = "rollback-deployment-log"
"""The ConfigMap holding each namespace's deployment log: a line per rollback, kept whether or
not a backups bucket keeps the log too."""


class LiveRollback:
    """The engine's Recorder, Controls and ReportStore for one Rollback object."""

    def __init__(
        self, body: kopf.Body, stopped: kopf.DaemonStopped | None, deps: Deps, peers: Any
    ) -> None:
        self.body, self.stopped, self.deps, self.peers = body, stopped, deps, peers
        self._namespace = body.metadata.namespace or ""
        self._name = body.metadata.name or ""
        saved = dict(body.get("status", {}))
        self._status = StatusPatches(deps.kube, PLURAL, self._namespace, self._name, saved)
        self._telemetry = deps.telemetry
        self._trigger = observe.trigger_of(body.metadata.labels, body.metadata.annotations)

    async def save(self, status: RollbackStatus) -> None:
        wire, saved = status.wire(), self._status.saved
        # judged now, as `wire` was: parallel steps change `status` while the patch is sent
        ended = observe.ended_steps(saved, status)
        result = observe.ended_phase(saved, status)
        seconds, mode = observe.run_seconds(status), status.mode
        if await self._status.write(wire):
            self.deps.records[self.body.metadata.uid or ""] = wire
            self._count(ended, result, seconds, mode)

    def recorded(self) -> RollbackStatus:
        """The status as last written (the live body may not have caught up with it yet)."""
        return RollbackStatus.model_validate(self._status.saved)

    def _count(
        self, ended: list[observe.StepEnd], result: str | None, seconds: float | None,
        mode: str | None,
    ) -> None:  # fmt: skip
        """Metrics and log lines for the steps and the outcome a save made durable."""
        for end in ended:
            self._telemetry.step_finished(step=end.name, target=end.target, seconds=end.seconds)
            logger.info(
                "Step %s%s %s after %d attempt(s) in %.1fs", end.name,
                f" ({end.target})" if end.target else "", end.state, end.attempts, end.seconds,
                extra={"step": end.name, "target": end.target or None},
            )  # fmt: skip
        if result is not None:
            mode = mode or self.body.get("spec", {}).get("mode") or "quick"
            self._telemetry.rollback_finished(
                mode=mode, trigger=self._trigger, result=result, seconds=seconds
            )

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        logger.log(logging.WARNING if warning else logging.INFO, "%s: %s", reason, message)
        kopf.event(
            self.body, type="Warning" if warning else "Normal", reason=reason, message=message
        )

    def abort_requested(self) -> bool:
        value = self.body.metadata.annotations.get(ABORT_ANNOTATION, "")
        return value.strip().lower() in {"true", "yes", "1"}

    def resume_requested(self) -> bool:
        return traffic.requested(self.body.metadata.annotations)

    def approved_by(self) -> str | None:
        who = self.body.metadata.annotations.get(APPROVED_BY_ANNOTATION, "").strip()
        return who or None

    def requested_by(self) -> str | None:
        asker = self.body.metadata.annotations.get(REQUESTED_BY_ANNOTATION, "").strip()
        return asker or None

    def generation(self) -> int:
        return int(self.body.metadata.get("generation") or 1)

    async def admit(self) -> int:
        me = index.rollback_entry(self.body)
        admission = self.deps.admission
        async with admission.lock:
            others = list(self.peers)
            position = queue.position(me, others, admission.running)
            if position == 0:
                admission.running.add(me.uid)
            return position

    async def release(self) -> None:
        self.deps.admission.running.discard(self.body.metadata.uid or "")

    def rolled_back_ahead(self) -> dict[str, queue.RolledBack]:
        return queue.rolled_back_ahead(index.rollback_entry(self.body), list(self.peers))

    async def pause(self, seconds: float) -> bool:
        if self.stopped is None:  # a deletion handler: kopf cancels it if the operator stops
            await asyncio.sleep(seconds)
            return False
        await self.stopped.wait(seconds)
        return bool(self.stopped)

    async def store(self, markdown: str) -> str:
        name = f"{self._name}-report"
        owner = {
            "apiVersion": API_VERSION,
            "kind": "Rollback",
            "name": self._name,
            "uid": self.body.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        await self.deps.kube.upsert_config_map(
            self._namespace, name, {"report.md": markdown}, owner
        )
        return name

    async def log(self, key: str, line: str) -> str:
        await self.deps.kube.add_log_line(self._namespace, DEPLOYMENT_LOG, key, line)
        return f"ConfigMap {DEPLOYMENT_LOG}"

    async def invalid(self, message: str) -> None:
        """Record bad input once: Stalled, reason InvalidSpec, and a Warning Event."""
        status = RollbackStatus.model_validate(self.body.get("status", {}))
        if status.message == message and transitions.is_invalid(status):
            return
        now = self.deps.clock.now()
        transitions.invalid(status, message, now=now, generation=self.generation())
        await self.save(status)
        await self.event(warning=True, reason="InvalidSpec", message=message)
