"""How the kubectl plugin shows rollbacks: tables, steps with durations, conditions, the plan.

Pure functions from API bodies to text, so the output is tested without a cluster.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Body = dict[str, Any]


def _age(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "-"
    seconds = int((now - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _took(step: Body) -> str:
    start, end = step.get("startedAt"), step.get("finishedAt")
    if not start or not end:
        return "-"
    delta = datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(
        start.replace("Z", "+00:00")
    )
    return f"{delta.total_seconds():.1f}s"


def table(rows: list[list[str]]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def rollback_list(items: list[Body], now: datetime | None = None) -> str:
    """`kubectl rollback list`."""
    now = now or datetime.now(UTC)
    rows = [["NAME", "PHASE", "MODE", "TARGETS", "TRIGGER", "REASON", "AGE"]]
    for item in sorted(items, key=lambda i: i["metadata"].get("creationTimestamp", "")):
        status, spec, meta = item.get("status", {}), item.get("spec", {}), item["metadata"]
        targets = status.get("targets") or spec.get("targets") or []
        trigger = meta.get("labels", {}).get("rollback.mindmate.app/trigger", "manual")
        rows.append([
            meta["name"], status.get("phase", "Pending"), spec.get("mode", "quick"),
            ",".join(targets) or "-", trigger, (spec.get("reason") or "-")[:40],
            _age(meta.get("creationTimestamp"), now),
        ])  # fmt: skip
    return table(rows) if len(rows) > 1 else "No rollbacks."


def plan(body: Body) -> str:
    """The plan of a rollback, one target a line."""
    lines = []
    for target, move in (body.get("status", {}).get("plan") or {}).items():
        if "to" in move:
            lines.append(f"  {target:<9} {move.get('from') or '?'} -> {move['to']}")
        elif "backup" in move:
            window = move.get("dataLossWindow") or "?"
            lines.append(f"  {target:<9} restore {move['backup']} (data-loss window {window})")
        else:
            restore, hide = move.get("objectsToRestore", 0), move.get("objectsToHide", 0)
            lines.append(
                f"  {target:<9} as of {move.get('asOf')}: {restore} to restore, {hide} to hide"
            )
    return "\n".join(lines) or "  (no plan yet)"


def steps(body: Body) -> str:
    """The step table."""
    rows = [["STEP", "TARGET", "STATE", "ATTEMPTS", "TOOK", "MESSAGE"]]
    for step in body.get("status", {}).get("steps", []):
        rows.append([
            step["name"], step.get("target") or "-", step.get("state", "Pending"),
            str(step.get("attempts", 0)), _took(step), (step.get("message") or "")[:70],
        ])  # fmt: skip
    return table(rows) if len(rows) > 1 else "  (no steps yet)"


def status(body: Body) -> str:
    """`kubectl rollback status NAME`."""
    meta, spec, st = body["metadata"], body.get("spec", {}), body.get("status", {})
    lines = [
        f"Rollback {meta.get('namespace')}/{meta['name']}: {st.get('phase', 'Pending')}",
        f"  {st.get('message', '')}",
        f"Mode {spec.get('mode', 'quick')}; reason: {spec.get('reason') or '-'}; "
        f"version: {spec.get('version') or '-'}",
        "Plan:",
        plan(body),
        "Steps:",
        steps(body),
        "Conditions:",
    ]
    for condition in st.get("conditions", []):
        lines.append(
            f"  {condition['type']:<18} {condition['status']:<7} {condition['reason']}: "
            f"{condition.get('message', '')}"
        )
    return "\n".join(lines)
