"""What each step does: one function per step name, calling the providers.

Steps get everything from a `StepContext` and return a `StepResult`; the engine records it.
Every provider call carries the step's idempotency key, so a redone step has one effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from rollback_operator.api.common import Target
from rollback_operator.api.rollback import (
    FAILED_PHASES,
    CheckResult,
    DeploymentPlan,
    Phase,
    Rollback,
    RollbackStatus,
    StepState,
    StepStatus,
)
from rollback_operator.api.rules import Rule
from rollback_operator.providers.base import (
    DeploymentTarget,
    Notice,
    Notifier,
    Providers,
    StepResult,
)
from rollback_operator.providers.errors import PermanentError, ProviderError
from rollback_operator.reconcile import monitoring, steplist, traffic
from rollback_operator.reconcile.ports import ReportStore
from rollback_operator.reconcile.report import (
    ReportInput,
    created_at,
    deployment_line,
    plan_moves,
    render,
)


class StepFailed(Exception):
    """A step finished but did not achieve its aim (such as a failed verification check)."""


NOTICE_PATIENCE = 10.0
"""Seconds a rollback waits for its start notice before its first change, by default (the
operator's setting `notice_patience`): the runbook tells people first, but a channel that is
slow or down (Slack's outage is often the same incident) must not hold the rollback."""


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """Everything a step may read or record, complete for one run of one rollback.

    `status` is the run's one record: steps change it in place and `checkpoint` saves it.
    """

    rollback: Rollback
    status: RollbackStatus
    providers: Providers
    reports: ReportStore
    now: Callable[[], datetime]
    checkpoint: Callable[[], Awaitable[None]]
    pause: Callable[[float], Awaitable[bool]]  # True when the operator stops
    trigger: str
    contacts: tuple[str, ...]  # as the report and notices print them
    rules: tuple[Rule, ...]  # the policy's rules: watched in verification and the report
    verify_window: timedelta
    traffic_policy: str = "keepStopped"  # the policy's failurePolicy.traffic
    notice_patience: float = NOTICE_PATIENCE
    """Seconds the start notice may hold the rollback before its first change."""
    outcome: Phase | None = None  # judged before the report and the last notice

    def key(self, step: StepStatus) -> str:
        """The idempotency key of `step` for this rollback."""
        return steplist.idempotency_key(self.rollback.metadata.uid, step)


StepFn = Callable[[StepStatus, StepContext], Awaitable[StepResult]]


@dataclass
class StepJournal:
    """The `Journal` of one step: ids merged into its externalIds and saved at once."""

    step: StepStatus
    checkpoint: Callable[[], Awaitable[None]]

    @property
    def recorded(self) -> Mapping[str, str]:
        return dict(self.step.external_ids)

    async def record(self, **ids: str) -> None:
        self.step.external_ids = {**self.step.external_ids, **ids}
        await self.checkpoint()


def _target(ctx: StepContext, step: StepStatus) -> tuple[DeploymentTarget, DeploymentPlan]:
    target = step.target
    provider = getattr(ctx.providers, target.value) if target else None
    move = getattr(ctx.status.plan, target.value) if target and ctx.status.plan else None
    if provider is None or move is None:
        raise PermanentError(f"no provider or plan for target {target}")
    return provider, move


async def _stop_traffic(step: StepStatus, ctx: StepContext) -> StepResult:
    provider, move = _target(ctx, step)
    return await provider.stop_traffic(ctx.key(step), move)


async def _instant_rollback(step: StepStatus, ctx: StepContext) -> StepResult:
    provider, move = _target(ctx, step)
    return await provider.rollback(move.to, ctx.key(step), StepJournal(step, ctx.checkpoint))


async def _deploy_previous(step: StepStatus, ctx: StepContext) -> StepResult:
    provider, move = _target(ctx, step)
    journal = StepJournal(step, ctx.checkpoint)
    moved = await provider.rollback(move.to, ctx.key(step), journal)
    resumed = await provider.resume_traffic(ctx.key(step), move, journal)
    return StepResult(
        message=f"{moved.message}; {resumed.message}",
        external_ids={**moved.external_ids, **resumed.external_ids},
    )


async def _resume_traffic(step: StepStatus, ctx: StepContext) -> StepResult:
    """Undo stop-traffic on whatever version the layer runs now (a failed or aborted rollback)."""
    provider, move = _target(ctx, step)
    journal = StepJournal(step, ctx.checkpoint)
    return await provider.resume_traffic(ctx.key(step), move, journal)


async def _safety_backup(step: StepStatus, ctx: StepContext) -> StepResult:
    if ctx.providers.database is None:
        raise PermanentError("no database provider")
    return await ctx.providers.database.safety_backup(ctx.key(step))


async def _restore_database(step: StepStatus, ctx: StepContext) -> StepResult:
    plan = ctx.status.plan.database if ctx.status.plan else None
    if ctx.providers.database is None or plan is None:
        raise PermanentError("no database provider or plan")
    return await ctx.providers.database.restore(plan.backup, ctx.key(step))


async def _restore_storage(step: StepStatus, ctx: StepContext) -> StepResult:
    plan = ctx.status.plan.storage if ctx.status.plan else None
    if ctx.providers.storage is None or plan is None:
        raise PermanentError("no storage provider or plan")
    return await ctx.providers.storage.restore(plan.as_of, ctx.key(step), plan.source)


async def _verify(step: StepStatus, ctx: StepContext) -> StepResult:
    verifier = ctx.providers.verifier
    checks, rules = await asyncio.gather(
        verifier.verify() if verifier else _nothing(), _rules_clear(ctx)
    )
    results = [*checks, *rules]
    ctx.status.verification = results
    failed = [r for r in results if not r.passed]
    if failed:
        names = ", ".join(f"{r.name} ({r.message})" for r in failed)
        raise StepFailed(f"{len(failed)} of {len(results)} checks failed: {names}")
    if not results:
        return StepResult("no verification checks configured")
    return StepResult(f"all {len(results)} checks passed")


async def _nothing() -> list[CheckResult]:
    return []


async def _rules_clear(ctx: StepContext) -> list[CheckResult]:
    """The policy's critical rules held clear for `verification.window` (none: no results)."""
    source = ctx.providers.metrics
    if source is None or not ctx.rules:
        return []
    return await monitoring.hold_clear(ctx.rules, source, ctx.verify_window, ctx.now, ctx.pause)


async def _sample_rules(ctx: StepContext) -> None:
    """Each rule over the rollback so far, into status.monitoring (for the report)."""
    source, started = ctx.providers.metrics, ctx.status.started_at
    if source is None or not ctx.rules or started is None:
        return
    ctx.status.monitoring = await monitoring.sample_rules(ctx.rules, source, started, ctx.now())


async def _report(step: StepStatus, ctx: StepContext) -> StepResult:
    await _sample_rules(ctx)
    data = ReportInput(ctx.rollback, ctx.status, ctx.outcome, ctx.now(), ctx.trigger, ctx.contacts)
    name, key = await _store_report(ctx, data)
    line = deployment_line(data, key)
    logged = await _log_line(ctx, data, line)
    archive = ctx.providers.archive
    if archive is not None and key is not None:
        await archive.log(line, f" - {key}")  # the run's own report: logged once per run
        logged += " and the bucket's"
    if isinstance(name, PermanentError):
        if key is not None:  # the run's report is there: status.reportRef names it
            step.external_ids = {**step.external_ids, "s3Key": key}
        raise StepFailed(f"{name}; the report is in {key or 'no archive'}; {logged}")
    ids = {"configMap": name} | ({"s3Key": key} if key else {})
    archived = f" and {key}" if key else ""
    return StepResult(f"report stored in ConfigMap {name}{archived}; {logged}", ids)


async def _log_line(ctx: StepContext, data: ReportInput, line: str) -> str:
    """The rollback's deployment-log line into the namespace's log, whether or not a backups
    bucket keeps one too; a log the operator may not write is said in the step's message, and
    never fails a rollback that has done its work."""
    when, meta = ctx.status.started_at or data.now, ctx.rollback.metadata
    # time first (the log is read in key order), then the run: a Rollback applied again under
    # the name has a line of its own; at most 253 characters, a ConfigMap key's limit
    key = f"{when:%Y%m%dT%H%M%SZ}.{meta.name[:226]}.{meta.uid[:8]}"
    try:
        where = await ctx.reports.log(key, line)
    except PermanentError as error:
        return f"deployment log not written: {error}"
    return f"deployment log line in {where}"


async def refresh_report(ctx: StepContext) -> None:
    """The report again after the rollback's end (traffic given back later), in the same
    ConfigMap and S3 object; the deployment log already has the rollback's line."""
    data = ReportInput(ctx.rollback, ctx.status, None, ctx.now(), ctx.trigger, ctx.contacts)
    name, _ = await _store_report(ctx, data)
    if isinstance(name, PermanentError):
        raise name


async def _store_report(
    ctx: StepContext, data: ReportInput
) -> tuple[str | PermanentError, str | None]:
    """The ConfigMap's name (or why it could not be written) and the archive's location of this
    run's report (None without an archive). The archive comes first: a ConfigMap the operator
    may not write (an earlier Rollback's of this name that the garbage collector has not yet
    taken) costs the copy in the cluster, never the one meant to outlive it."""
    markdown = render(data)
    archive, meta = ctx.providers.archive, ctx.rollback.metadata
    key = None
    if archive is not None:
        created = created_at(data)
        key = await archive.store(
            meta.namespace, meta.name, markdown, uid=meta.uid, created=created
        )
    try:
        return await ctx.reports.store(markdown), key
    except PermanentError as error:
        return error, key


def _notice(ctx: StepContext, kind: str) -> Notice:
    spec, meta, status = ctx.rollback.spec, ctx.rollback.metadata, ctx.status
    phase = ctx.outcome or status.phase
    report = status.report_ref.config_map if status.report_ref else None
    return Notice(
        kind="started" if kind == "started" else "finished",
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        mode=spec.mode,
        targets=tuple(t.value for t in status.targets),
        reason=spec.reason or "",
        phase=phase.value,
        summary=status.message or "",
        trigger=ctx.trigger,
        version=spec.version or "",
        moves=tuple(plan_moves(status.plan)),
        report=report or "",
        contacts=ctx.contacts,
        failed=phase in FAILED_PHASES,
        traffic_stopped=tuple(t.value for t in traffic.stopped(status)),
        resume_hint=traffic.resume_hint(meta.namespace, meta.name),
    )


@dataclass
class NotifierJournal:
    """One notifier's ids across the notify steps of a rollback, saved in this step."""

    step: StepStatus
    steps: list[StepStatus]
    prefix: str
    checkpoint: Callable[[], Awaitable[None]]

    @property
    def recorded(self) -> Mapping[str, str]:
        ids: dict[str, str] = {}
        for step in self.steps:
            if step.name in (steplist.NOTIFY_STARTED, steplist.NOTIFY_FINISHED):
                ids |= {
                    k.removeprefix(self.prefix): v
                    for k, v in step.external_ids.items()
                    if k.startswith(self.prefix)
                }
        return ids

    async def record(self, **ids: str) -> None:
        self.note(**ids)
        await self.checkpoint()

    def note(self, **ids: str) -> None:
        """Add ids to the step's record without a write of their own (the next one has them)."""
        extra = {f"{self.prefix}{k}": v for k, v in ids.items()}
        self.step.external_ids = {**self.step.external_ids, **extra}


async def _notify(step: StepStatus, ctx: StepContext, kind: str) -> StepResult:
    started = next((s for s in ctx.status.steps if s.name == steplist.NOTIFY_STARTED), None)
    if kind == "finished" and started is not None and started.state == StepState.SKIPPED:
        return StepResult("nothing was announced, so there is nothing to close")
    if not ctx.providers.notifiers:
        return StepResult("no notifiers configured")
    waiting = list(ctx.providers.notifiers)
    errors: list[str] = []
    try:  # the start notice comes first, but never holds the rollback past its patience
        async with asyncio.timeout(ctx.notice_patience if kind == "started" else None):
            await _tell_each(step, ctx, _notice(ctx, kind), waiting, errors)
    except TimeoutError:
        errors += [
            f"{n.name}: no answer within {ctx.notice_patience:g}s; the rollback went on "
            "without waiting for it"
            for n in waiting
        ]
    if errors:
        raise StepFailed("; ".join(errors))
    return StepResult(f"{len(ctx.providers.notifiers)} notifier(s) told")


async def _tell_each(
    step: StepStatus, ctx: StepContext, notice: Notice, waiting: list[Notifier], errors: list[str]
) -> None:
    """Tell each notifier in `waiting` in turn, taking it off once it answered (told, or its
    error appended to `errors`); one already told for this step is not told again."""
    unsaved = False
    for notifier in list(waiting):
        if f"{notifier.name}.sent" in step.external_ids:
            waiting.remove(notifier)
            continue
        journal = NotifierJournal(step, ctx.status.steps, f"{notifier.name}.", ctx.checkpoint)
        if unsaved:  # the last notifier's `sent`, durable before the next one is told
            await ctx.checkpoint()
        try:
            result = await notifier.notify(notice, f"{ctx.key(step)}/{notifier.name}", journal)
        except ProviderError as error:
            text = str(error)  # most errors already start with their provider's name
            errors.append(
                text if text.startswith(f"{notifier.name}:") else f"{notifier.name}: {text}"
            )
            waiting.remove(notifier)
            continue
        journal.note(**result.external_ids, sent="true")  # written with the step's end
        waiting.remove(notifier)
        unsaved = True


async def _notify_started(step: StepStatus, ctx: StepContext) -> StepResult:
    return await _notify(step, ctx, "started")


async def _notify_finished(step: StepStatus, ctx: StepContext) -> StepResult:
    return await _notify(step, ctx, "finished")


STEPS: dict[str, StepFn] = {
    steplist.NOTIFY_STARTED: _notify_started,
    steplist.STOP_TRAFFIC: _stop_traffic,
    steplist.SAFETY_BACKUP: _safety_backup,
    steplist.RESTORE_DATABASE: _restore_database,
    steplist.RESTORE_STORAGE: _restore_storage,
    steplist.DEPLOY_PREVIOUS: _deploy_previous,
    steplist.INSTANT_ROLLBACK: _instant_rollback,
    steplist.RESUME_TRAFFIC: _resume_traffic,
    steplist.VERIFY: _verify,
    steplist.REPORT: _report,
    steplist.NOTIFY_FINISHED: _notify_finished,
}


def target_label(target: Target | None) -> str:
    """How a step's target reads in messages."""
    return f" ({target.value})" if target else ""
