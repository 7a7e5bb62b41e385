"""The incident report in Markdown: what was rolled back, why, each step, and the outcome.

Rendered from the status alone (plus the policy's contacts), so it can be rebuilt at any time
and never sees a secret. Sections follow the runbook's "Rollback Documentation" checklist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rollback_operator.api.common import format_duration
from rollback_operator.api.policy import Contact
from rollback_operator.api.rollback import (
    FAILED_PHASES,
    Phase,
    Rollback,
    RollbackPlan,
    RollbackStatus,
    StepState,
    StepStatus,
)
from rollback_operator.reconcile import traffic
from rollback_operator.reconcile.steplist import REPORT, TRAITS


@dataclass(frozen=True)
class ReportInput:
    """Everything the report shows."""

    rollback: Rollback
    status: RollbackStatus
    outcome: Phase | None
    now: datetime
    trigger: str = "manual"
    contacts: tuple[str, ...] = ()


def contact_line(contact: Contact) -> str:
    """A policy's contact as the report and notices print it."""
    email = f" <{contact.email}>" if contact.email else ""
    return f"{contact.role}: {contact.name}{email}"


def _took(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(delta)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _summary(data: ReportInput) -> list[str]:
    spec, meta, status = data.rollback.spec, data.rollback.metadata, data.status
    started = status.started_at or data.now
    outcome = data.outcome or status.phase
    return [
        f"# Rollback report: {meta.namespace}/{meta.name}",
        "",
        f"- Outcome: **{outcome.value}**",
        f"- Trigger: {data.trigger}; mode: {spec.mode}; "
        f"targets: {', '.join(t.value for t in status.targets)}",
        f"- Version: {spec.version or '-'}",
        f"- Reason: {spec.reason or '-'}",
        f"- Started: {_when(status.started_at)}; total duration: {_took(data.now - started)}",
        f"- Approved by: {status.approved_by or 'not required'}",
    ]


def _deployment_moves(plan: RollbackPlan) -> list[tuple[str, str]]:
    """Frontend and backend as `(target, "<from> -> <to>")`, as the report and notices say."""
    deployments = (("frontend", plan.frontend), ("backend", plan.backend))
    return [(t, f"{m.from_ or '?'} -> {m.to}") for t, m in deployments if m is not None]


def plan_moves(plan: RollbackPlan | None) -> list[tuple[str, str]]:
    """Each target's move in a few words, as notices list them."""
    if plan is None:
        return []
    moves = _deployment_moves(plan)
    if plan.database is not None:
        moves.append(("database", f"restore {plan.database.backup}"))
    if plan.storage is not None:
        moves.append(("storage", f"as of {plan.storage.as_of.isoformat()}"))
    return moves


def _plan(plan: RollbackPlan | None) -> list[str]:
    lines = ["", "## Plan and impact", ""]
    if plan is None:
        return [*lines, "- no plan was made"]
    lines += [f"- {target}: {move}" for target, move in _deployment_moves(plan)]
    if plan.database:
        lines.append(
            f"- database: restore {plan.database.backup} taken {_when(plan.database.taken_at)}; "
            f"data-loss window (writes discarded): {plan.database.data_loss_window or '-'}"
        )
    if plan.storage:
        lines.append(
            f"- storage: as of {_when(plan.storage.as_of)}: {plan.storage.objects_to_restore} "
            f"objects to restore, {plan.storage.objects_to_hide} to hide"
        )
    return lines


def _steps(status: RollbackStatus) -> list[str]:
    lines = [
        "",
        "## Steps",
        "",
        "| step | target | state | attempts | started | took | ids | message |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|")
    for step in status.steps:
        took = (
            _took(step.finished_at - step.started_at)
            if step.started_at and step.finished_at
            else "-"
        )
        ids = ", ".join(f"{k}={v}" for k, v in step.external_ids.items() if k != "followUp")
        started = step.started_at.strftime("%H:%M:%S") if step.started_at else "-"
        lines.append(
            f"| {step.name} | {step.target.value if step.target else '-'} | {_state(step)} "
            f"| {step.attempts} | {started} | {took} | {ids or '-'} "
            f"| {(step.message or '').replace('|', '/')} |"
        )
    return lines


def _state(step: StepStatus) -> str:
    """The step's state; the report's own step and the ones after it say so."""
    if step.name == REPORT and step.state == StepState.RUNNING:
        return "Running (writes this report)"
    if step.state == StepState.PENDING and TRAITS[step.name].always:
        return "Pending (runs after this report)"
    return step.state.value


def _monitoring(status: RollbackStatus) -> list[str]:
    """The runbook's "Monitoring During Rollback": each policy rule over the rollback."""
    if not status.monitoring:
        return []
    lines = [
        "",
        "## Monitoring during the rollback",
        "",
        "| rule | thresholds | min | max | last | worst | points |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule in status.monitoring:
        if rule.message:
            lines.append(f"| {rule.name} | {rule.thresholds or '-'} | - | - | - | - | "
                         f"{rule.message.replace('|', '/')} |")  # fmt: skip
            continue
        numbers = " | ".join(_value(v) for v in (rule.min, rule.max, rule.last))
        lines.append(
            f"| {rule.name} | {rule.thresholds or '-'} | {numbers} | {rule.worst} "
            f"| {rule.samples} |"
        )
    return lines


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _traffic(data: ReportInput) -> list[str]:
    """Traffic the rollback stopped and has not given back, said plainly, and how to resume."""
    layers = traffic.stopped(data.status)
    if not layers:
        return []
    meta = data.rollback.metadata
    return [
        "",
        "## Traffic still stopped",
        "",
        f"- Still stopped: **{', '.join(t.value for t in layers)}** (production serves no "
        "traffic there)",
        f"- To serve again, each on the version it runs now: "
        f"`{traffic.resume_hint(meta.namespace, meta.name)}`",
    ]


def _follow_ups(data: ReportInput) -> list[str]:
    items = [s.external_ids["followUp"] for s in data.status.steps if "followUp" in s.external_ids]
    if traffic.stopped(data.status):
        items.append("Traffic is still stopped: see above for how to resume it.")
    if (data.outcome or data.status.phase) in FAILED_PHASES:
        items.append("The rollback did not finish cleanly: check the steps above before retrying.")
    if not items:
        return []
    return ["", "## Follow-ups", "", *(f"- {item}" for item in dict.fromkeys(items))]


def render(data: ReportInput) -> str:
    """The report as Markdown."""
    lines = [*_summary(data), *_traffic(data), *_plan(data.status.plan), *_steps(data.status)]
    lines += _monitoring(data.status)
    if data.status.verification:
        lines += ["", "## Verification", ""]
        lines += [
            f"- {'PASS' if c.passed else 'FAIL'} {c.name}: {c.message}"
            for c in data.status.verification
        ]
    lines += _follow_ups(data)
    if data.contacts:
        lines += ["", "## Contacts", "", *(f"- {c}" for c in data.contacts)]
    return "\n".join(lines) + "\n"


def deployment_line(data: ReportInput, report: str | None = None) -> str:
    """The runbook's deployment-log line: `<time> - Rollback to <version> - Reason: <reason>`,
    then the outcome and the rollback's name, and where its archived report is (`report`, the
    run's own: a Rollback applied again under the name has another), when there is one."""
    spec, meta = data.rollback.spec, data.rollback.metadata
    when = (data.status.started_at or data.now).strftime("%Y-%m-%d %H:%M UTC")
    outcome = (data.outcome or data.status.phase).value
    line = (
        f"{when} - Rollback to {spec.version or 'previous version'} - "
        f"Reason: {spec.reason or '-'} - {outcome} - {meta.namespace}/{meta.name}"
    )
    return f"{line} - {report}" if report else line


def created_at(data: ReportInput) -> datetime:
    """When the Rollback was created, which names its archived report: the API server's
    `creationTimestamp`; for a body without one, the run's start, else now."""
    stamp = data.rollback.metadata.creation_timestamp
    return datetime.fromisoformat(stamp) if stamp else data.status.started_at or data.now
