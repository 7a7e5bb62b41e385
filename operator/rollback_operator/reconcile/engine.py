"""The durable step engine: through the gates (plan, approval, queue), then run each step and
record it before the next.

`Engine.run` is a function of the recorded status and the world: started again after a crash
with the status it left, it resumes at the first unfinished step. A step that was running when
the operator died is redone from its start; a finished one never runs again. Each step is
recorded before the next one acts, in as few writes as that allows (`reconcile.writes`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import cached_property

from rollback_operator.api.common import parse_duration
from rollback_operator.api.conditions import ConditionType, Reason
from rollback_operator.api.policy import RollbackPolicySpec
from rollback_operator.api.rollback import (
    STARTED_PHASES,
    TERMINAL_PHASES,
    Phase,
    ReportRef,
    Rollback,
    RollbackStatus,
    StepState,
    StepStatus,
)
from rollback_operator.providers.base import Providers
from rollback_operator.reconcile import outcome, report, traffic, writes
from rollback_operator.reconcile.gates import Gates
from rollback_operator.reconcile.ports import Clock, Controls, Recorder, ReportStore, Stopping
from rollback_operator.reconcile.record import Record
from rollback_operator.reconcile.runner import RetryPolicy, StepRunner, run_together
from rollback_operator.reconcile.steplist import (
    NOTIFY_FINISHED,
    REPORT,
    TRAITS,
    VERIFY,
    groups,
)
from rollback_operator.reconcile.steps import NOTICE_PATIENCE, StepContext, refresh_report

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Engine:
    """Runs one Rollback to its end, recording every change through `recorder`."""

    recorder: Recorder
    controls: Controls
    clock: Clock
    reports: ReportStore
    retry: RetryPolicy
    tick: float = 0.5
    trigger: str = "manual"
    linger: float = writes.LINGER
    notice_patience: float = NOTICE_PATIENCE

    @cached_property
    def _writes(self) -> writes.Writes:
        """Where this run's record goes: `_save` writes now, `_enter(durable=False)` later."""
        return writes.Writes(
            recorder=self.recorder, retry=self.retry, controls=self.controls, linger=self.linger
        )

    @cached_property
    def _record(self) -> Record:
        """Phase moves, conditions, writes and Events of this run."""
        return Record(writes=self._writes, controls=self.controls, clock=self.clock, tick=self.tick)

    @cached_property
    def _gates(self) -> Gates:
        """Plan, approval and queue: what comes before the first step."""

        async def abort(ctx: StepContext) -> Phase:
            return await self._finish(ctx, aborted=True)

        return Gates(
            record=self._record,
            controls=self.controls,
            clock=self.clock,
            retry=self.retry,
            abort=abort,
        )

    async def run(
        self, rollback: Rollback, policy: RollbackPolicySpec, providers: Providers
    ) -> Phase | None:
        """Drive `rollback` from its recorded status to a terminal phase (None if stopped)."""
        try:
            return await self._drive(self._context(rollback, policy, providers))
        except Stopping:
            logger.info("Operator stopping; %s resumes from its record", rollback.metadata.name)
            return None
        finally:
            await self._writes.close()

    def _context(
        self, rollback: Rollback, policy: RollbackPolicySpec, providers: Providers
    ) -> StepContext:
        """This run's context: a copy of the recorded status, and what the policy adds."""
        status = rollback.status.model_copy(deep=True)

        async def checkpoint() -> None:
            await self._save_steps(rollback, status)

        return StepContext(
            rollback=rollback,
            status=status,
            providers=providers,
            reports=self.reports,
            now=self.clock.now,
            checkpoint=checkpoint,
            pause=self.controls.pause,
            trigger=self.trigger,
            contacts=tuple(report.contact_line(c) for c in policy.contacts),
            rules=tuple(policy.rules),
            verify_window=parse_duration(policy.verification.window),
            traffic_policy=policy.failure_policy.traffic,
            notice_patience=self.notice_patience,
        )

    async def _drive(self, ctx: StepContext) -> Phase | None:
        status = ctx.status
        if status.phase in TERMINAL_PHASES:
            return await self._resume_after_end(ctx)
        ended = await self._gates.pass_(ctx)
        if ended is not None:
            return ended
        if status.phase not in STARTED_PHASES:
            status.started_at = status.started_at or self.clock.now()
            await self._record.enter(
                status, Phase.RUNNING, "Running the plan's steps", durable=False
            )
        return await self._finish(ctx, aborted=False)

    async def _finish(self, ctx: StepContext, *, aborted: bool) -> Phase:
        status, runner = ctx.status, self._runner(ctx)
        while (todo := _next_open(status)) is not None:
            await self._record.refuse_spec_change(status)
            aborted = aborted or await self._abort_seen()
            if todo[0].name == REPORT and self._give_traffic_back(ctx, aborted=aborted):
                await self._save_steps(ctx.rollback, status)
                continue  # the resume-traffic steps run first, so the report can say so
            ctx = await self._run_group(ctx, runner, todo, aborted=aborted)
        final = outcome.judge(status.steps)
        status.finished_at = self.clock.now()
        status.report_ref = _report_ref(status) or status.report_ref
        await self.controls.release()
        self._mark_traffic(ctx.rollback, status, ended=True)  # it says how to resume now
        await self._record.enter(status, final, outcome.summary(status.steps, final))
        return final

    def _give_traffic_back(self, ctx: StepContext, *, aborted: bool) -> bool:
        """After a failure or an abort, add resume-traffic steps for the layers still stopped,
        if the policy says `resume` or someone asked already; True if any were added."""
        status = ctx.status
        if not aborted and not outcome.failed_critical(status.steps):
            return False
        layers = traffic.stopped(status)
        wanted = ctx.traffic_policy == "resume" or self.controls.resume_requested()
        return bool(layers) and wanted and traffic.add_resume_steps(status, layers, retry=False)

    async def _resume_after_end(self, ctx: StepContext) -> Phase:
        """A finished rollback whose traffic is still stopped, once someone asks: resume-traffic
        steps, then the condition and the report say so; the phase stays what it was."""
        status = ctx.status
        layers = traffic.stopped(status)
        if not layers or not self.controls.resume_requested():
            return status.phase
        traffic.add_resume_steps(status, layers, retry=True)
        await self._record.save(status)
        runner = self._runner(ctx, mark=False)  # the condition turns last: the daemon may end then
        while (todo := _next_open(status)) is not None:
            await run_together([runner.run(step, ctx) for step in todo])
        await refresh_report(ctx)
        left = traffic.stopped(status)
        reason = "TrafficStillStopped" if left else "TrafficResumed"
        named = ", ".join(t.value for t in left)
        message = f"Still stopped: {named}" if left else "Traffic serves again on every layer"
        await self._record.event(warning=bool(left), reason=reason, message=message)
        await self._save_steps(ctx.rollback, status)
        return status.phase

    def _runner(self, ctx: StepContext, *, mark: bool = True) -> StepRunner:
        async def save(status: RollbackStatus) -> None:
            if mark:
                self._mark_traffic(ctx.rollback, status)
            await self._record.save(status)

        def note(status: RollbackStatus) -> None:
            if mark:
                self._mark_traffic(ctx.rollback, status)
            self._writes.later(status)

        return StepRunner(
            retry=self.retry,
            controls=self.controls,
            clock=self.clock,
            recorder=self._writes,
            save=save,
            note=note,
        )

    async def _save_steps(self, rollback: Rollback, status: RollbackStatus) -> None:
        """Save after steps changed, with the TrafficStopped condition they imply."""
        self._mark_traffic(rollback, status)
        await self._record.save(status)

    def _mark_traffic(
        self, rollback: Rollback, status: RollbackStatus, *, ended: bool | None = None
    ) -> None:
        meta, now, generation = rollback.metadata, self.clock.now(), self.controls.generation()
        ended = status.phase in TERMINAL_PHASES if ended is None else ended
        traffic.mark(status, meta.namespace, meta.name, ended=ended, now=now, generation=generation)

    async def _abort_seen(self) -> bool:
        """Whether someone asked to abort; said once, in an Event."""
        if not self.controls.abort_requested():
            return False
        await self._record.event(
            warning=True, reason="AbortRequested", message="Skipping steps not started"
        )
        return True

    async def _run_group(
        self, ctx: StepContext, runner: StepRunner, todo: list[StepStatus], *, aborted: bool
    ) -> StepContext:
        """Run (or skip) one group of steps; the context the next group sees."""
        status, first = ctx.status, todo[0]
        if not TRAITS[first.name].always and (aborted or outcome.failed_critical(status.steps)):
            why = outcome.ABORTED_MESSAGE if aborted else outcome.AFTER_FAILURE_MESSAGE
            cut = [
                s for s in todo if s.state == StepState.RUNNING and not TRAITS[s.name].cut_safely
            ]
            for step in todo:
                if not any(step is c for c in cut):
                    step.state, step.message = StepState.SKIPPED, why
            await self._record.save(status)
            # a step cut short (a crash, a deletion) is finished, never left half done
            await run_together([runner.run(step, ctx) for step in cut])
            return ctx
        if first.name == VERIFY:  # written with the verify step's start
            await self._record.enter(
                status, Phase.VERIFYING, "Verifying the rollback", durable=False
            )
        if first.name in (REPORT, NOTIFY_FINISHED) and ctx.outcome is None:
            # the report and the last notice tell the outcome (also in a run resumed between)
            judged = outcome.judge(status.steps)
            status.message = outcome.summary(status.steps, judged)
            ctx = replace(ctx, outcome=judged)
        await run_together([runner.run(step, ctx) for step in todo])
        if first.name == VERIFY:
            self._record_verification(status)
        return ctx

    def _record_verification(self, status: RollbackStatus) -> None:
        step = next(s for s in status.steps if s.name == VERIFY)
        passed = step.state == StepState.SUCCEEDED
        reason = Reason.CHECKS_PASSED if passed else Reason.CHECKS_FAILED
        if passed and not status.verification:
            reason = Reason.NO_CHECKS
        self._record.mark(status, ConditionType.VERIFIED, passed, reason, step.message or "")


_OPEN = (StepState.PENDING, StepState.RUNNING)


def _next_open(status: RollbackStatus) -> list[StepStatus] | None:
    """The steps still to run of the first group that has any (the list may grow as it runs)."""
    for group in groups(status.steps):
        todo = [status.steps[i] for i in group if status.steps[i].state in _OPEN]
        if todo:
            return todo
    return None


def _report_ref(status: RollbackStatus) -> ReportRef | None:
    """Where the report step stored the report: its ConfigMap and archive copy, or the archive
    copy alone when the ConfigMap could not be written."""
    step = next((s for s in status.steps if s.name == REPORT), None)
    ids = step.external_ids if step else {}
    name, key = ids.get("configMap"), ids.get("s3Key")
    return ReportRef(config_map=name, s3_key=key) if name or key else None
