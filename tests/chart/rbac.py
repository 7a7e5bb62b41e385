"""Kubernetes RBAC, evaluated over rendered manifests: does the chart allow this request?

The emulator enforces no RBAC, so the chart tests decide it themselves, with the API server's
rules: a request is allowed if a rule of a ClusterRole bound by a ClusterRoleBinding, or of a
Role bound by a RoleBinding in the request's namespace, names the request's API group,
resource (``plural/subresource``), verb and, if the rule lists resourceNames, its object name.
Wildcards are matched too, so that a test can show a chart has none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sandbox.kube.audit import Entry

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Grant:
    """One (verb, group, resource) a rule grants, where, and for which object names."""

    verb: str
    group: str
    resource: str
    namespace: str | None  # None: cluster-wide (a ClusterRole through a ClusterRoleBinding)
    names: tuple[str, ...] = ()  # empty: every object


def _matches(allowed: list[str], value: str) -> bool:
    return "*" in allowed or value in allowed


def rule_allows(rule: Manifest, entry: Entry) -> bool:
    """Whether one PolicyRule allows the request."""
    names = rule.get("resourceNames") or []
    return (
        _matches(rule.get("apiGroups", []), entry.group)
        and _matches(rule.get("resources", []), entry.resource)
        and _matches(rule.get("verbs", []), entry.verb)
        and (not names or entry.name in names)
    )


class Authorizer:
    """The rules that reach one ServiceAccount through the rendered bindings."""

    def __init__(self, docs: list[Manifest], account: str, account_namespace: str) -> None:
        self.cluster_rules: list[Manifest] = []
        self.namespace_rules: dict[str, list[Manifest]] = {}
        roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
                 for d in docs if d["kind"] in ("Role", "ClusterRole")}  # fmt: skip
        for binding in docs:
            if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
                continue
            subject = {"kind": "ServiceAccount", "name": account, "namespace": account_namespace}
            if not any(_subject(s, binding) == subject for s in binding.get("subjects", [])):
                continue
            where = binding["metadata"].get("namespace")
            ref = binding["roleRef"]
            role = roles.get((ref["kind"], where if ref["kind"] == "Role" else None, ref["name"]))
            assert role is not None, f"{binding['kind']} {binding['metadata']['name']}: no role"
            if binding["kind"] == "ClusterRoleBinding":
                self.cluster_rules += role.get("rules", [])
            else:
                self.namespace_rules.setdefault(where, []).extend(role.get("rules", []))

    def allows(self, entry: Entry) -> bool:
        rules = self.cluster_rules + (self.namespace_rules.get(entry.namespace or "", []))
        return any(rule_allows(rule, entry) for rule in rules)

    def grants(self) -> Iterator[Grant]:
        """Every (verb, group, resource) granted, with where and for which names."""
        scoped: list[tuple[str | None, Manifest]] = [(None, r) for r in self.cluster_rules]
        scoped += [(ns, r) for ns, rules in self.namespace_rules.items() for r in rules]
        for namespace, rule in scoped:
            for group in rule.get("apiGroups", []):
                for resource in rule.get("resources", []):
                    for verb in rule.get("verbs", []):
                        names = tuple(rule.get("resourceNames") or ())
                        yield Grant(verb, group, resource, namespace, names)


def _subject(subject: Manifest, binding: Manifest) -> Manifest:
    return {
        "kind": subject.get("kind"),
        "name": subject.get("name"),
        "namespace": subject.get("namespace", binding["metadata"].get("namespace")),
    }
