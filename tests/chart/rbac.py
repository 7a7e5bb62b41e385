"""What the chart's RBAC grants one ServiceAccount, read from the rendered manifests.

The real API server decides whether a call is allowed (`tests/chart/test_rbac.py` runs the
operator with the chart's ServiceAccount and fails on any refusal). This module answers the
other question, whether the chart grants more than the operator uses: it lists every
(verb, API group, resource) that a Role or ClusterRole bound to the account grants, where
(a namespace, or cluster-wide) and for which object names, so each can be matched against the
calls the operator made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Grant:
    """One (verb, group, resource) a rule grants, where, and for which object names."""

    verb: str
    group: str
    resource: str
    namespace: str | None  # None: cluster-wide (a ClusterRole through a ClusterRoleBinding)
    names: tuple[str, ...] = ()  # empty: every object


def grants(docs: list[Manifest], account: str, account_namespace: str) -> Iterator[Grant]:
    """Every grant that reaches ServiceAccount `account_namespace/account` through the
    rendered bindings."""
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
             for d in docs if d["kind"] in ("Role", "ClusterRole")}  # fmt: skip
    subject = {"kind": "ServiceAccount", "name": account, "namespace": account_namespace}
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(_subject(s, binding) == subject for s in binding.get("subjects", [])):
            continue
        where = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], where if ref["kind"] == "Role" else None, ref["name"]))
        assert role is not None, f"{binding['kind']} {binding['metadata']['name']}: no role"
        namespace = None if binding["kind"] == "ClusterRoleBinding" else where
        for rule in role.get("rules", []):
            yield from _rule_grants(rule, namespace)


def _rule_grants(rule: Manifest, namespace: str | None) -> Iterator[Grant]:
    names = tuple(rule.get("resourceNames") or ())
    for group in rule.get("apiGroups", []):
        for resource in rule.get("resources", []):
            for verb in rule.get("verbs", []):
                yield Grant(verb, group, resource, namespace, names)


def _subject(subject: Manifest, binding: Manifest) -> Manifest:
    return {
        "kind": subject.get("kind"),
        "name": subject.get("name"),
        "namespace": subject.get("namespace", binding["metadata"].get("namespace")),
    }
