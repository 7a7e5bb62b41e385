"""How the kubectl plugin shows rollbacks: tables, steps with durations, conditions, the plan,
and the candidates a policy's targets can go back to; or the objects as JSON or YAML.

Pure functions from API bodies (and adapters' answers) to text, so the output is tested without
a cluster. The models are imported for their types only: `list` and `status` must not pay for
pydantic at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollback_operator.api.policy import RollbackPolicy
    from rollback_operator.providers.base import Candidate

Body = dict[str, Any]
LEGEND = "* live    <- default: what `kubectl rollback plan` picks without --to"


def document(value: object, output: str) -> str:
    """`-o json` or `-o yaml`: the objects as the API holds them (kubectl's own layout)."""
    if output == "json":
        return json.dumps(value, indent=4, sort_keys=False)
    import yaml  # only -o yaml pays for it

    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip()


def age(stamp: str | None, now: datetime) -> str:
    """How long ago an RFC 3339 time was, kubectl-style (`3d`, `5h`, `12m`, `40s`), or `-`."""
    return _since(datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None, now)


def _since(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = int((now - when).total_seconds())
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


def rollback_list(
    items: list[Body], now: datetime | None = None, *, all_namespaces: bool = False
) -> str:
    """`kubectl rollback list` (with a NAMESPACE column for `-A`)."""
    now = now or datetime.now(UTC)
    head = ["NAME", "PHASE", "MODE", "TARGETS", "TRIGGER", "REASON", "AGE"]
    rows = [["NAMESPACE", *head] if all_namespaces else head]
    for item in sorted(items, key=lambda i: i["metadata"].get("creationTimestamp", "")):
        status, spec, meta = item.get("status", {}), item.get("spec", {}), item["metadata"]
        targets = status.get("targets") or spec.get("targets") or []
        trigger = meta.get("labels", {}).get("rollback.mindmate.app/trigger", "manual")
        row = [
            meta["name"], status.get("phase", "Pending"), spec.get("mode", "quick"),
            ",".join(targets) or "-", trigger, (spec.get("reason") or "-")[:40],
            age(meta.get("creationTimestamp"), now),
        ]  # fmt: skip
        rows.append([meta.get("namespace", ""), *row] if all_namespaces else row)
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
            lines += [f"  {'':<9} keeps {t} through it" for t in move.get("carriedTriggers") or []]
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
        *verification(st),
        *monitoring(st),
        "Conditions:",
    ]
    for condition in st.get("conditions", []):
        lines.append(
            f"  {condition['type']:<18} {condition['status']:<7} {condition['reason']}: "
            f"{condition.get('message', '')}"
        )
    return "\n".join(lines)


def verification(st: Body) -> list[str]:
    """Each verification check with its verdict (why a rollback is PartiallyFailed)."""
    checks = st.get("verification", [])
    if not checks:
        return []
    marks = [f"  {'PASS' if c.get('passed') else 'FAIL'} {c['name']}: {c.get('message', '')}"
             for c in checks]  # fmt: skip
    return ["Verification:", *marks]


def monitoring(st: Body) -> list[str]:
    """The policy's rules over the rollback (the report's "Monitoring during the rollback")."""
    rules = st.get("monitoring", [])
    if not rules:
        return []
    rows = [["RULE", "MIN", "MAX", "LAST", "WORST", "THRESHOLDS"]]
    for rule in rules:
        numbers = [number(rule.get(k)) for k in ("min", "max", "last")]
        worst = rule.get("message") or rule.get("worst", "Unknown")
        rows.append([rule["name"], *numbers, worst, rule.get("thresholds") or "-"])
    return ["Monitoring during the rollback:", table(rows)]


def number(value: object) -> str:
    """A measured value in four significant digits, or `-`."""
    return f"{value:.4g}" if isinstance(value, int | float) else "-"


def candidates(
    policy: RollbackPolicy,
    found: Mapping[str, Sequence[Candidate] | str],
    now: datetime | None = None,
) -> str:
    """`kubectl rollback candidates POLICY`: per target its candidates (or why there are none,
    as text), then the storage note, then the legend."""
    now = now or datetime.now(UTC)
    meta = policy.metadata
    sections = [f"RollbackPolicy {meta.namespace}/{meta.name}: candidates, newest first"]
    for target, rows in found.items():
        title = target_title(policy, target)
        body = f"  error: {rows}" if isinstance(rows, str) else _indent(candidate_table(rows, now))
        sections.append(f"{title}\n{body}")
    storage = policy.spec.targets.storage
    note = storage.chosen()[1].candidates_note() if storage else None
    if note:
        sections.append(note)
    return "\n\n".join([*sections, LEGEND])


def candidate_table(rows: Sequence[Candidate], now: datetime) -> str:
    """One target's candidates: `*` marks the live one, `<- default` the default target."""
    if not rows:
        return "(none)"
    table_rows = [[" ", "ID", "CREATED", "AGE", "STATE", "NOTE", ""]]  # " ": room for "*"
    for row in rows:
        created = row.created_at.astimezone(UTC) if row.created_at else None
        table_rows.append([
            "*" if row.live else "", row.id,
            created.strftime("%Y-%m-%dT%H:%M:%SZ") if created else "-",
            _since(created, now), row.state, row.note or "-",
            "<- default" if row.default else "",
        ])  # fmt: skip
    return table(table_rows)


def target_title(policy: RollbackPolicy, target: str) -> str:
    """Which project, service or bucket a target is, for a section title."""
    layer = getattr(policy.spec.targets, target, None)
    if layer is None:
        return f"{target}:"
    return f"{target}: {layer.chosen()[1].summary()}"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
