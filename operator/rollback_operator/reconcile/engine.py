"""The durable step engine: plan, gate, queue, then run each step and record it before the next.

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
from rollback_operator.api.conditions import ConditionType, Reason, find
from rollback_operator.api.policy import RollbackPolicySpec
from rollback_operator.api.rollback import (
    FAILED_PHASES,
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
from rollback_operator.providers.errors import ProviderError
from rollback_operator.reconcile import approval, outcome, report, traffic, transitions, writes
from rollback_operator.reconcile.planner import PlanError, make_plan
from rollback_operator.reconcile.ports import Clock, Controls, Recorder, ReportStore, Stopping
from rollback_operator.reconcile.runner import RetryPolicy, StepRunner, run_together
from rollback_operator.reconcile.steplist import (
    NOTIFY_FINISHED,
    REPORT,
    TRAITS,
    VERIFY,
    groups,
    steps_for,
)
from rollback_operator.reconcile.steps import StepContext, refresh_report

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

    @cached_property
    def _writes(self) -> writes.Writes:
        """Where this run's record goes: `_save` writes now, `_enter(durable=False)` later."""
        return writes.Writes(
            recorder=self.recorder, retry=self.retry, controls=self.controls, linger=self.linger
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
        )

    async def _drive(self, ctx: StepContext) -> Phase | None:
        status = ctx.status
        if status.phase in TERMINAL_PHASES:
            return await self._resume_after_end(ctx)
        if status.accepted_generation is None:
            planned = await self._plan(ctx)
            if planned is not None:
                return planned
        now, generation = self.clock.now(), self.controls.generation()
        if transitions.input_fixed(status, now=now, generation=generation):
            await self._save(status)  # the phase goes on as it was: no gate is skipped
        await self._refuse_spec_change(status)
        if status.phase == Phase.AWAITING_APPROVAL and not await self._await_approval(status):
            return await self._finish(ctx, aborted=True)
        if status.phase == Phase.QUEUED and not await self._await_turn(status):
            return await self._finish(ctx, aborted=True)
        if status.phase not in STARTED_PHASES:
            status.started_at = status.started_at or self.clock.now()
            await self._enter(status, Phase.RUNNING, "Running the plan's steps", durable=False)
        return await self._finish(ctx, aborted=False)

    async def _plan(self, ctx: StepContext) -> Phase | None:
        spec, status, now = ctx.rollback.spec, ctx.status, self.clock.now()
        note = "Planning: reading each target's state"
        await self._enter(status, Phase.PLANNING, note, durable=False)  # reading changes nothing
        try:
            plan = await StepRunner.with_retries(
                self.retry, self.controls, make_plan, spec, ctx.providers, now
            )
        except (PlanError, ProviderError) as error:
            self._mark(status, ConditionType.PLANNED, False, Reason.PLAN_FAILED, str(error))
            await self._enter(status, Phase.FAILED, f"Planning failed: {error}", Reason.PLAN_FAILED)
            return Phase.FAILED
        status.plan, status.mode = plan, spec.mode
        status.targets = spec.chosen_targets()
        safety = plan.database is None or plan.database.safety_backup
        status.steps = steps_for(spec.mode, status.targets, safety_backup=safety)
        status.accepted_generation = self.controls.generation()
        self._mark(status, ConditionType.PLANNED, True, Reason.PLANNED, "Plan ready")
        if spec.dry_run:
            await self._enter(status, Phase.PLANNED, "Dry run: plan ready, nothing changed")
            return Phase.PLANNED
        if spec.require_approval:
            note = "Waiting for the annotation rollback.mindmate.app/approved-by"
            self._mark(status, ConditionType.APPROVED, False, Reason.AWAITING_APPROVAL, note)
            await self._enter(status, Phase.AWAITING_APPROVAL, note)
        else:
            self._mark(status, ConditionType.APPROVED, True, Reason.NOT_REQUIRED, "Not required")
            note = "Waiting for other rollbacks of these targets"
            await self._enter(status, Phase.QUEUED, note, durable=False)  # written once admitted
        return None

    async def _await_approval(self, status: RollbackStatus) -> bool:
        while True:
            if self.controls.abort_requested():
                return False
            who = self.controls.approved_by()
            refused = approval.refusal(who, self.controls.requested_by())
            if refused:
                await self._refuse_approval(status, refused)
            elif who:
                status.approved_by = who
                self._mark(status, ConditionType.APPROVED, True, Reason.APPROVED, f"By {who}")
                await self._enter(status, Phase.QUEUED, f"Approved by {who}")
                return True
            await self._pause()
            await self._refuse_spec_change(status)

    async def _refuse_approval(self, status: RollbackStatus, message: str) -> None:
        """Keep waiting for approval, saying once (condition and Event) why this one fails."""
        seen = find(status.conditions, ConditionType.APPROVED)
        if seen is not None and seen.reason == Reason.SELF_APPROVAL and seen.message == message:
            return
        self._mark(status, ConditionType.APPROVED, False, Reason.SELF_APPROVAL, message)
        await self._save(status)
        await self._writes.event(warning=True, reason=Reason.SELF_APPROVAL.value, message=message)

    async def _await_turn(self, status: RollbackStatus) -> bool:
        while True:
            if self.controls.abort_requested():
                return False
            position = await self.controls.admit()
            if position == 0:
                status.queue_position = None
                return True
            if status.queue_position != position:
                status.queue_position = position
                await self._enter(status, Phase.QUEUED, f"Queued at position {position}")
            await self._pause()
            await self._refuse_spec_change(status)

    async def _finish(self, ctx: StepContext, *, aborted: bool) -> Phase:
        status, runner = ctx.status, self._runner(ctx)
        while (todo := _next_open(status)) is not None:
            await self._refuse_spec_change(status)
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
        await self._enter(status, final, outcome.summary(status.steps, final))
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
        await self._save(status)
        runner = self._runner(ctx, mark=False)  # the condition turns last: the daemon may end then
        while (todo := _next_open(status)) is not None:
            await run_together([runner.run(step, ctx) for step in todo])
        await refresh_report(ctx)
        left = traffic.stopped(status)
        reason = "TrafficStillStopped" if left else "TrafficResumed"
        named = ", ".join(t.value for t in left)
        message = f"Still stopped: {named}" if left else "Traffic serves again on every layer"
        await self._writes.event(warning=bool(left), reason=reason, message=message)
        await self._save_steps(ctx.rollback, status)
        return status.phase

    def _runner(self, ctx: StepContext, *, mark: bool = True) -> StepRunner:
        async def save(status: RollbackStatus) -> None:
            if mark:
                self._mark_traffic(ctx.rollback, status)
            await self._save(status)

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
        await self._save(status)

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
        await self._writes.event(
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
            await self._save(status)
            # a step cut short (a crash, a deletion) is finished, never left half done
            await run_together([runner.run(step, ctx) for step in cut])
            return ctx
        if first.name == VERIFY:  # written with the verify step's start
            await self._enter(status, Phase.VERIFYING, "Verifying the rollback", durable=False)
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
        self._mark(status, ConditionType.VERIFIED, passed, reason, step.message or "")

    async def _refuse_spec_change(self, status: RollbackStatus) -> None:
        generation, accepted = self.controls.generation(), status.accepted_generation
        if accepted is None or generation == accepted:
            return
        message = (
            f"spec changed after planning (generation {generation}); the rollback keeps "
            f"running generation {accepted}"
        )
        seen = find(status.conditions, ConditionType.SPEC_CHANGE_REFUSED)
        if seen is not None and seen.message == message:
            return
        reason = Reason.SPEC_IMMUTABLE
        self._mark(status, ConditionType.SPEC_CHANGE_REFUSED, True, reason, message)
        await self._save(status)
        await self._writes.event(warning=True, reason=reason.value, message=message)

    def _mark(
        self, status: RollbackStatus, type_: ConditionType, value: bool, reason: Reason, text: str
    ) -> None:
        transitions.mark(
            status,
            type_,
            value,
            reason,
            text,
            now=self.clock.now(),
            generation=self.controls.generation(),
        )

    async def _enter(
        self,
        status: RollbackStatus,
        phase: Phase,
        message: str,
        reason: Reason | None = None,
        *,
        durable: bool = True,
    ) -> None:
        """Move to `phase`, written now or, with `durable=False`, with the next write (no wait
        and no provider call that changes something comes first); its Event follows the write."""
        before = status.phase
        now, generation = self.clock.now(), self.controls.generation()
        transitions.enter(status, phase, message, now=now, generation=generation, reason=reason)
        if durable:
            await self._save(status)
        else:
            self._writes.later(status)
        if before != phase or phase == Phase.QUEUED:
            warning = phase in FAILED_PHASES
            await self._writes.event(warning=warning, reason=phase.value, message=message)

    async def _save(self, status: RollbackStatus) -> None:
        """Record `status` now, with every change noted since the last write."""
        await self._writes.save(status)

    async def _pause(self) -> None:
        if await self.controls.pause(self.tick):
            raise Stopping


_OPEN = (StepState.PENDING, StepState.RUNNING)


def _next_open(status: RollbackStatus) -> list[StepStatus] | None:
    """The steps still to run of the first group that has any (the list may grow as it runs)."""
    for group in groups(status.steps):
        todo = [status.steps[i] for i in group if status.steps[i].state in _OPEN]
        if todo:
            return todo
    return None


def _report_ref(status: RollbackStatus) -> ReportRef | None:
    step = next((s for s in status.steps if s.name == REPORT), None)
    ids = step.external_ids if step else {}
    name, key = ids.get("configMap"), ids.get("s3Key")
    return ReportRef(config_map=name, s3_key=key) if name else None
