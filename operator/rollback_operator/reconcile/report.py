"""The incident report in Markdown: what was rolled back, why, each step, and the outcome.

Rendered from the status alone, so it can be rebuilt at any time and never sees a secret.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rollback_operator.api.common import format_duration
from rollback_operator.api.rollback import Phase, Rollback, RollbackStatus


def _took(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(delta)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def render(rollback: Rollback, status: RollbackStatus, outcome: Phase | None, now: datetime) -> str:
    """The report as Markdown."""
    spec, meta = rollback.spec, rollback.metadata
    started = status.started_at or now
    lines = [
        f"# Rollback report: {meta.namespace}/{meta.name}",
        "",
        f"- Outcome: **{(outcome or status.phase).value}**",
        f"- Mode: {spec.mode}; targets: {', '.join(t.value for t in status.targets)}",
        f"- Version: {spec.version or '-'}",
        f"- Reason: {spec.reason or '-'}",
        f"- Started: {_when(status.started_at)}; duration so far: {_took(now - started)}",
        "",
        "## Plan",
        "",
    ]
    plan = status.plan
    if plan and plan.frontend:
        lines.append(f"- frontend: {plan.frontend.from_ or '?'} -> {plan.frontend.to}")
    if plan and plan.backend:
        lines.append(f"- backend: {plan.backend.from_ or '?'} -> {plan.backend.to}")
    if plan and plan.database:
        lines.append(
            f"- database: restore {plan.database.backup} taken {_when(plan.database.taken_at)}, "
            f"data-loss window {plan.database.data_loss_window or '-'}"
        )
    if plan and plan.storage:
        lines.append(
            f"- storage: as of {_when(plan.storage.as_of)}, {plan.storage.objects_to_restore} "
            f"to restore, {plan.storage.objects_to_hide} to hide"
        )
    lines += ["", "## Steps", "", "| step | target | state | attempts | duration | message |"]
    lines.append("|---|---|---|---|---|---|")
    for step in status.steps:
        took = (
            _took(step.finished_at - step.started_at)
            if step.started_at and step.finished_at
            else "-"
        )
        target = step.target.value if step.target else "-"
        lines.append(
            f"| {step.name} | {target} | {step.state.value} | {step.attempts} | {took} "
            f"| {(step.message or '').replace('|', '/')} |"
        )
    if status.verification:
        lines += ["", "## Verification", ""]
        lines += [
            f"- {'PASS' if c.passed else 'FAIL'} {c.name}: {c.message}" for c in status.verification
        ]
    return "\n".join(lines) + "\n"
