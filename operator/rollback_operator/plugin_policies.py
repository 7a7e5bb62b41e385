"""`kubectl rollback policy ...`: what each RollbackPolicy sees, and its kill switch.

`list` and `show` print the rule states the operator keeps in status (Ok, Pending, Warning,
Critical, NoData, Error) beside each rule's thresholds, and the guards that decide whether a
breach rolls back (suspended, cooldown, the last automatic rollback). `suspend` and `resume`
set `spec.suspend`, the policy's own kill switch: evaluation goes on, automatic rollbacks stop.
A policy that a GitOps tool applies would be set back by it, so the command says so.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from rollback_operator.plugin_kube import MERGE_PATCH, Kube, path_of
from rollback_operator.plugin_view import age, document, number, table

Body = dict[str, Any]
GITOPS_MARKS = (
    "argocd.argoproj.io/tracking-id",
    "argocd.argoproj.io/instance",
    "kustomize.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/name",
)


def list_policies(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback policy list [-A] [-o json|yaml]`."""
    namespace = None if args.all_namespaces else args.namespace
    items: list[Body] = kube.get(path_of("rollbackpolicies", namespace)).get("items", [])
    if args.output:
        print(document({"apiVersion": "v1", "kind": "List", "items": items}, args.output))
    else:
        print(policy_table(items, all_namespaces=namespace is None))
    return 0


def show_policy(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback policy show NAME [-o json|yaml]`."""
    body = kube.get(path_of("rollbackpolicies", args.namespace, args.name))
    print(document(body, args.output) if args.output else policy_view(body))
    return 0


def suspend(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback policy suspend NAME`."""
    return _set_suspend(kube, args, suspended=True)


def resume(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback policy resume NAME`."""
    return _set_suspend(kube, args, suspended=False)


def _set_suspend(kube: Kube, args: argparse.Namespace, *, suspended: bool) -> int:
    path = path_of("rollbackpolicies", args.namespace, args.name)
    body = kube.request("PATCH", path, {"spec": {"suspend": suspended}}, content_type=MERGE_PATCH)
    if suspended:
        print(
            f"rollbackpolicy/{args.name} suspended: no automatic rollbacks until "
            f"`kubectl rollback policy resume {args.name}`; its rules are still evaluated"
        )
    else:
        print(f"rollbackpolicy/{args.name} resumed: automatic rollbacks allowed again")
    meta = body.get("metadata", {})
    marks = {**meta.get("labels", {}), **meta.get("annotations", {})}
    tool = next((mark for mark in GITOPS_MARKS if mark in marks), None)
    if tool:
        print(
            f"warning: rollbackpolicy/{args.name} is applied by a GitOps tool ({tool}); it "
            "will set spec.suspend back unless the change is committed",
            file=sys.stderr,
        )
    return 0


def policy_table(items: list[Body], *, all_namespaces: bool, now: datetime | None = None) -> str:
    """One line per policy: whether it may roll back, and its rules' states counted."""
    now = now or datetime.now(UTC)
    head = ["NAME", "SUSPENDED", "RULES", "LAST AUTOMATIC", "COOLDOWN UNTIL", "AGE"]
    rows = [["NAMESPACE", *head] if all_namespaces else head]
    for item in sorted(items, key=lambda i: (i["metadata"].get("namespace", ""),
                                             i["metadata"]["name"])):  # fmt: skip
        meta, st = item["metadata"], item.get("status", {})
        row = [
            meta["name"], "yes" if item.get("spec", {}).get("suspend") else "no",
            _states(st.get("rules", [])), (st.get("lastAutomaticRollback") or {}).get("name", "-"),
            st.get("cooldownUntil") or "-", age(meta.get("creationTimestamp"), now),
        ]  # fmt: skip
        rows.append([meta.get("namespace", ""), *row] if all_namespaces else row)
    return table(rows) if len(rows) > 1 else "No rollback policies."


def _states(rules: list[Body]) -> str:
    counts: dict[str, int] = {}
    for rule in rules:
        counts[rule.get("state", "?")] = counts.get(rule.get("state", "?"), 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "not evaluated"


def policy_view(body: Body, now: datetime | None = None) -> str:
    """`policy show`: the guards, each rule's state beside its thresholds, the conditions."""
    now = now or datetime.now(UTC)
    meta, spec, st = body["metadata"], body.get("spec", {}), body.get("status", {})
    automatic = "SUSPENDED (spec.suspend)" if spec.get("suspend") else "allowed"
    last = st.get("lastAutomaticRollback") or {}
    lines = [
        f"RollbackPolicy {meta.get('namespace')}/{meta['name']}: automatic rollbacks {automatic}",
        f"  last automatic rollback: {last.get('name', '-')} {last.get('time', '')}".rstrip(),
        f"  cooldown until: {st.get('cooldownUntil') or '-'}",
        "Rules:",
        rule_table(spec.get("rules", []), st.get("rules", []), now),
        "Conditions:",
    ]
    for condition in st.get("conditions", []):
        lines.append(f"  {condition['type']:<12} {condition['status']:<7} "
                     f"{condition.get('reason', '')}: {condition.get('message', '')}")  # fmt: skip
    suppressed = st.get("suppressed") or {}
    if suppressed:
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(suppressed.items()))
        lines.append(f"Automatic rollbacks suppressed: {counts}")
    return "\n".join(lines)


def rule_table(rules: list[Body], states: list[Body], now: datetime) -> str:
    """Each rule: state, value, thresholds, duration, whether it rolls back, since when."""
    seen = {state["name"]: state for state in states}
    rows = [["RULE", "STATE", "VALUE", "WARNING", "CRITICAL", "FOR", "AUTO", "SINCE", "EVALUATED"]]
    for rule in rules:
        state = seen.get(rule["name"], {})
        rows.append([
            rule["name"], state.get("state", "-"), number(state.get("value")),
            _bound(rule.get("warning")), _bound(rule.get("critical")), rule.get("for") or "-",
            "yes" if rule.get("autoRollback") else "no", age(state.get("since"), now),
            age(state.get("lastEvaluated"), now),
        ])  # fmt: skip
    return table(rows) if len(rows) > 1 else "  (no rules)"


def _bound(threshold: Body | None) -> str:
    if not threshold:
        return "-"
    if threshold.get("above") is not None:
        return f"> {threshold['above']}"
    return f"< {threshold.get('below')}"
