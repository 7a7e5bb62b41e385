"""Everything before a rollback's first step acts: the plan, the approval, the turn in the queue.

A plan describes the state of the targets when it was made. Another rollback of the same
targets that goes first changes that state, so a rollback that waited behind one is planned
again when its turn comes, and what runs is always a plan of the state it acts on:

- A plan that fails while other rollbacks of these targets go first (started, or queued
  before it) waits in `Queued` and is made when they end; it fails only if it fails then. A
  dry run never waits: it shows the state as it is.
- At its turn, a rollback that waited is planned again. If a destination moved (`planner.
  plan_change`), a rollback without approval runs the new plan and says so (condition Planned,
  reason Replanned, and an Event); a rollback whose approval was given to the earlier plan does
  not run: it fails with reason PlanChanged, nothing changed, naming both destinations.
- A rollback of the same targets that went ahead (it had not ended when this one was created)
  answered the same request: a target it rolled back is left alone, not taken one further
  (`queue.rolled_back_ahead`; pinned targets excepted). Its steps are Skipped saying who took
  it where, an Event (AlreadyRolledBack) says so, and that is no change of plan to approve.
  When that leaves it nothing at all to do, it ends there, Succeeded: the rollback ahead told
  the channel and wrote the report, so this one asks nobody for approval, sends no notice,
  runs no check and writes no report (a dry run still shows its plan).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rollback_operator.api.common import Target
from rollback_operator.api.conditions import ConditionType, Reason, find
from rollback_operator.api.rollback import Phase, RollbackPlan, RollbackStatus, StepState
from rollback_operator.providers.errors import ProviderError
from rollback_operator.reconcile import approval, transitions
from rollback_operator.reconcile.outcome import left_alone, summary
from rollback_operator.reconcile.planner import (
    PlanError,
    destinations,
    make_plan,
    pinned,
    plan_change,
)
from rollback_operator.reconcile.ports import Clock, Controls
from rollback_operator.reconcile.queue import RolledBack
from rollback_operator.reconcile.record import Record
from rollback_operator.reconcile.runner import RetryPolicy, StepRunner
from rollback_operator.reconcile.steplist import steps_for
from rollback_operator.reconcile.steps import StepContext

NOT_RUN = "Not run: the rollback ended before its turn to act"
NOTHING_LEFT = "Not run: every target was rolled back by a rollback ahead of this one"
ABORTED_UNPLANNED = "Aborted while it waited to plan: nothing was planned or changed"

Left = dict[Target, RolledBack]
"""Targets this rollback leaves alone: a rollback that went ahead rolled them back."""


@dataclass(frozen=True, kw_only=True)
class Gates:
    """Plan, approval and queue for one run."""

    record: Record
    controls: Controls
    clock: Clock
    retry: RetryPolicy
    abort: Callable[[StepContext], Awaitable[Phase]]
    """Ends a planned rollback aborted at a gate (its steps skipped, its report written)."""

    async def pass_(self, ctx: StepContext) -> Phase | None:
        """Through every gate still ahead: None when the steps may run, else the phase the
        rollback ended in (Planned, Failed, Aborted)."""
        status = ctx.status
        if status.accepted_generation is None:
            planned = await self._plan(ctx)
            if planned is not None:
                return planned
        now, generation = self.clock.now(), self.controls.generation()
        if transitions.input_fixed(status, now=now, generation=generation):
            await self.record.save(status)  # the phase goes on as it was: no gate is skipped
        await self.record.refuse_spec_change(status)
        if status.phase == Phase.AWAITING_APPROVAL and not await self._await_approval(status):
            return await self.abort(ctx)
        if status.phase == Phase.QUEUED:
            return await self._await_turn(ctx)
        return None

    async def _plan(self, ctx: StepContext) -> Phase | None:
        spec, status, record = ctx.rollback.spec, ctx.status, self.record
        planned = await self._first_plan(ctx)
        if isinstance(planned, Phase):
            return planned
        plan, left = planned
        self._adopt(ctx, plan, left)
        status.accepted_generation = self.controls.generation()
        ready = "; ".join(["Plan ready", *_notes(left)])
        record.mark(status, ConditionType.PLANNED, True, Reason.PLANNED, ready)
        await self._say_left(left)
        if spec.dry_run:
            await record.enter(status, Phase.PLANNED, "Dry run: plan ready, nothing changed")
            return Phase.PLANNED
        if _nothing_left(status):
            note = "Nothing to approve" if spec.require_approval else "Not required"
            record.mark(status, ConditionType.APPROVED, True, Reason.NOT_REQUIRED, note)
            return await self._nothing_to_do(status)
        if spec.require_approval:
            note = "Waiting for the annotation rollback.mindmate.app/approved-by"
            record.mark(status, ConditionType.APPROVED, False, Reason.AWAITING_APPROVAL, note)
            await record.enter(status, Phase.AWAITING_APPROVAL, note)
        else:
            record.mark(status, ConditionType.APPROVED, True, Reason.NOT_REQUIRED, "Not required")
            note = "Waiting for other rollbacks of these targets"
            await record.enter(status, Phase.QUEUED, note, durable=False)  # written once admitted
        return None

    async def _first_plan(self, ctx: StepContext) -> tuple[RollbackPlan, Left] | Phase:
        """The plan; one that fails while other rollbacks of these targets go first waits for
        them and is made again. Else the phase the rollback ended in."""
        status, record, note = ctx.status, self.record, "Planning: reading each target's state"
        while True:
            status.queue_position = None  # a plan made now waited behind nobody yet
            # reading changes nothing: the phase rides on the next write
            await record.enter(status, Phase.PLANNING, note, durable=False)
            try:
                return await self._read_plan(ctx)
            except (PlanError, ProviderError) as error:
                failed = error
            if ctx.rollback.spec.dry_run:
                break
            now = f"planning now: {failed}"
            waits = f"Waits to plan until the rollbacks of these targets ahead of it end ({now})"
            record.mark(status, ConditionType.PLANNED, False, Reason.PLAN_WAITING, waits)
            waited = await self._wait_turn(status, f"; it plans when they end ({now})")
            await self.controls.release()  # the turn to act is taken after planning and approval
            if waited is None:
                return await self._end_unrun(status, Phase.ABORTED, ABORTED_UNPLANNED)
            if not waited:
                break
        record.mark(status, ConditionType.PLANNED, False, Reason.PLAN_FAILED, str(failed))
        await record.enter(status, Phase.FAILED, f"Planning failed: {failed}", Reason.PLAN_FAILED)
        return Phase.FAILED

    async def _read_plan(self, ctx: StepContext) -> tuple[RollbackPlan, Left]:
        """The plan of the targets not left alone, and those left alone."""
        spec, providers, now = ctx.rollback.spec, ctx.providers, self.clock.now()
        left = self._left_alone(ctx)
        plan = await StepRunner.with_retries(
            self.retry, self.controls, make_plan, spec, providers, now, tuple(left)
        )
        return plan, left

    def _left_alone(self, ctx: StepContext) -> Left:
        """The unpinned targets a rollback that went ahead of this one already rolled back."""
        spec, done = ctx.rollback.spec, self.controls.rolled_back_ahead()
        pins = pinned(spec)
        chosen = [t for t in spec.chosen_targets() if t not in pins]
        return {t: done[t.value] for t in chosen if t.value in done}

    def _adopt(self, ctx: StepContext, plan: RollbackPlan, left: Left) -> None:
        """Make `plan` the one the steps execute; the steps of targets left alone are skipped."""
        spec, status = ctx.rollback.spec, ctx.status
        status.plan, status.mode = plan, spec.mode
        status.targets = spec.chosen_targets()
        safety = plan.database is None or plan.database.safety_backup
        status.steps = steps_for(spec.mode, status.targets, safety_backup=safety)
        for step in status.steps:
            if step.target in left:
                done = left[step.target]
                step.state = StepState.SKIPPED
                step.message = left_alone(step.target.value, done.by, done.to)

    async def _say_left(self, left: Left) -> None:
        """One Normal Event naming the targets newly left alone, who took them and where."""
        if left:
            message = "; ".join(_notes(left))
            await self.record.event(
                warning=False, reason=Reason.ALREADY_ROLLED_BACK.value, message=message
            )

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
                text = f"By {who}"
                self.record.mark(status, ConditionType.APPROVED, True, Reason.APPROVED, text)
                await self.record.enter(status, Phase.QUEUED, f"Approved by {who}")
                return True
            await self.record.pause()
            await self.record.refuse_spec_change(status)

    async def _refuse_approval(self, status: RollbackStatus, message: str) -> None:
        """Keep waiting for approval, saying once (condition and Event) why this one fails."""
        seen = find(status.conditions, ConditionType.APPROVED)
        if seen is not None and seen.reason == Reason.SELF_APPROVAL and seen.message == message:
            return
        self.record.mark(status, ConditionType.APPROVED, False, Reason.SELF_APPROVAL, message)
        await self.record.save(status)
        await self.record.event(warning=True, reason=Reason.SELF_APPROVAL.value, message=message)

    async def _await_turn(self, ctx: StepContext) -> Phase | None:
        """Wait for the turn; a rollback that waited behind others, or for a person's approval,
        is planned again then. The phase it ended in, or None when it runs."""
        waited = await self._wait_turn(ctx.status, "")
        if waited is None:
            return await self.abort(ctx)
        planned = destinations(ctx.status.plan)
        behind = bool(waited) or any(t.value in planned for t in self._left_alone(ctx))
        approved = ctx.rollback.spec.require_approval  # a person approved a plan read earlier
        return await self._replan(ctx, behind=behind) if behind or approved else None

    async def _wait_turn(self, status: RollbackStatus, why: str) -> int | None:
        """Wait until admitted: the last queue position held before (0: none), None if aborted."""
        held = status.queue_position or 0  # a wait the operator's restart interrupted
        while True:
            if self.controls.abort_requested():
                return None
            position = await self.controls.admit()
            if position == 0:
                status.queue_position = None
                return held
            if status.queue_position != position:
                status.queue_position = held = position
                await self.record.enter(status, Phase.QUEUED, f"Queued at position {position}{why}")
            await self.record.pause()
            await self.record.refuse_spec_change(status)

    async def _replan(self, ctx: StepContext, *, behind: bool) -> Phase | None:
        """Plan again against the state the rollbacks ahead left (`behind`) or the world moved
        to while a person approved, leaving alone the targets rollbacks ahead rolled back; a
        plan approved for another state never runs. The phase the rollback ended in, or None
        when it runs."""
        status, spec, record = ctx.status, ctx.rollback.spec, self.record
        try:
            fresh, left = await self._read_plan(ctx)
        except (PlanError, ProviderError) as error:
            message = f"Planning again at its turn failed: {error}"
            record.mark(status, ConditionType.PLANNED, False, Reason.PLAN_FAILED, message)
            return await self._end_unrun(status, Phase.FAILED, message, Reason.PLAN_FAILED)
        change = plan_change(status.plan, fresh, left)
        if change and spec.require_approval:
            waited = "behind other rollbacks of its targets" if behind else "for approval"
            message = (
                f"Not run: the plan changed while it waited {waited} ({change}), and "
                f"{status.approved_by} approved the earlier plan. Nothing was changed: apply a "
                "new Rollback to plan and approve the state now"
            )
            record.mark(status, ConditionType.APPROVED, False, Reason.PLAN_CHANGED, message)
            return await self._end_unrun(status, Phase.FAILED, message, Reason.PLAN_CHANGED)
        if not change and not behind:
            return None  # approved, and the world is where the approved plan found it
        planned = destinations(status.plan)
        newly = {t: done for t, done in left.items() if t.value in planned}
        self._adopt(ctx, fresh, left)
        message = "Planned again at its turn, against the state the rollbacks ahead left"
        message += f"; the destinations moved: {change}" if change else ""
        message = "; ".join([message, *_notes(left)])
        record.mark(status, ConditionType.PLANNED, True, Reason.REPLANNED, message)
        if change:
            await record.event(warning=False, reason=Reason.REPLANNED.value, message=message)
        await self._say_left(newly)
        return await self._nothing_to_do(status) if _nothing_left(status) else None

    async def _nothing_to_do(self, status: RollbackStatus) -> Phase:
        """End Succeeded now: every target was left alone, so no step is left to run."""
        message = summary(status.steps, Phase.SUCCEEDED)
        reason = Reason.ALREADY_ROLLED_BACK
        return await self._end_unrun(status, Phase.SUCCEEDED, message, reason, why=NOTHING_LEFT)

    async def _end_unrun(
        self, status: RollbackStatus, phase: Phase, message: str, reason: Reason | None = None,
        *, why: str | None = None,
    ) -> Phase:  # fmt: skip
        """End before any step acted: each step not run, the turn given back. With `why`, the
        steps left alone keep saying so and the others say `why`; else every step `NOT_RUN`."""
        for step in status.steps:
            if why is None or step.state != StepState.SKIPPED:
                step.state, step.message = StepState.SKIPPED, why or NOT_RUN
        status.finished_at = self.clock.now()
        await self.controls.release()
        await self.record.enter(status, phase, message, reason)
        return phase


def _nothing_left(status: RollbackStatus) -> bool:
    """Whether every step that acts on a target is left alone (Skipped at planning)."""
    acting = [s for s in status.steps if s.target is not None]
    return bool(acting) and all(s.state == StepState.SKIPPED for s in acting)


def _notes(left: Left) -> list[str]:
    """Each target left alone, who took it and where, in words."""
    return [left_alone(t.value, done.by, done.to) for t, done in left.items()]
