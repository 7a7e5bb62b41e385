"""The models' cross-field rules as CEL, so the API server refuses what the operator would.

Why this module exists: a manifest that only the operator's models refuse is admitted by
`kubectl apply` and fails later, quietly (a policy whose automatic Rollback the API server
would refuse, a rollback that stalls). The structural schema checks one field at a time,
`oneOf`/`anyOf` of required fields and list uniqueness; every other check of a model validator
has its twin here, keyed by the model it belongs to. `crd.schema_of` puts a model's rules
(`x-kubernetes-validations`) wherever that model's schema lands, and each rule's `fieldPath`
names the field, so the API server says `spec.rules[0].critical: ...` as the operator does.

CEL cost: the API server refuses a CRD whose rules could cost too much on the largest object
it would admit, estimated when the CRD is applied. Lists here have no `maxItems`, so a rule
that walks one keeps to comparisons (`t == 'frontend' || ...`): `t in [...]` on every item
was estimated over the budget. `tests/apiserver/test_crd_rules.py` applies these CRDs to a
real API server.
"""

from __future__ import annotations

from typing import Any

Rule = dict[str, Any]

QUICK_ONLY = (
    "self.mode == 'full' || !has(self.targets) || "
    "self.targets.all(t, t == 'frontend' || t == 'backend')"
)
_QUICK = "['frontend', 'backend']"
_LAYERS = ("frontend", "backend", "database", "storage")


def _rule(rule: str, message: str, field: str | None = None) -> Rule:
    out: Rule = {"rule": rule, "message": message}
    if field is not None:
        out["fieldPath"] = field
    return out


def exactly_one(keys: list[str]) -> Rule:
    """`common.OneOf._exactly_one`, `rules.Threshold._exactly_one`: the schema's `oneOf` of
    required keys counts a key set to null as set; CEL's `has` does not."""
    count = " + ".join(f"(has(self.{key}) ? 1 : 0)" for key in keys)
    return _rule(f"{count} == 1", f"exactly one of {', '.join(keys)} must be set")


_PAIR = "has(self.warning) && has(self.critical)"


def _past(bound: str, within: str) -> Rule:
    """warning.<bound> may not be past critical.<bound> (`within`: the comparison that holds)."""
    return _rule(
        f"!({_PAIR} && has(self.warning.{bound}) && has(self.critical.{bound})) || "
        f"self.warning.{bound} {within} self.critical.{bound}",
        f"must not be past critical.{bound}",
        f".warning.{bound}",
    )


_THRESHOLDS = [
    _rule(
        f"!({_PAIR}) || has(self.warning.above) == has(self.critical.above)",
        "warning and critical must both be above or both be below",
        ".warning",
    ),
    _past("above", "<="),
    _past("below", ">="),
]

RULE = [
    _rule("has(self.warning) || has(self.critical)", "needs a warning or a critical threshold"),
    _rule(
        "!self.autoRollback || has(self.critical)",
        "autoRollback needs a critical threshold",
        ".autoRollback",
    ),
    *_THRESHOLDS,
]
"""`rules.Rule._thresholds_agree` (the schema's `anyOf` counts a threshold set to null)."""

AUTOMATIC_ROLLBACK = [
    _rule(
        QUICK_ONLY,
        "quick mode rolls back frontend and backend only; use mode: full",
        ".targets",
    ),
]
"""`policy.AutomaticRollback._quick_targets` (repeats: the list is a set)."""

_AUTO_TARGETS = (
    f"(has(self.automaticRollback) && has(self.automaticRollback.targets) ? "
    f"self.automaticRollback.targets : {_QUICK})"
)
_ANY_AUTO = "has(self.rules) && self.rules.exists(r, r.autoRollback)"

POLICY_SPEC = [
    _rule(
        "!has(self.rules) || size(self.rules) == 0 || has(self.metrics)",
        "rules need a metrics source (metrics.prometheus.url)",
        ".metrics",
    ),
    *(
        _rule(
            f"!({_ANY_AUTO}) || !('{layer}' in {_AUTO_TARGETS}) || has(self.targets.{layer})",
            f"{layer} is not defined in spec.targets",
            ".automaticRollback.targets",
        )
        for layer in _LAYERS
    ),
    _rule(
        "!(has(self.targets.database) || has(self.targets.storage)) || has(self.objectStore)",
        "database and storage targets need an objectStore",
        ".objectStore",
    ),
    _rule(
        "!has(self.restorePoints) || has(self.targets.database) || has(self.targets.storage)",
        "needs a database or storage target to take",
        ".restorePoints",
    ),
]
"""`policy.RollbackPolicySpec._consistent` (rule names unique: the list is a map)."""

ROLLBACK_SPEC = [
    _rule(
        QUICK_ONLY,
        "quick mode rolls back frontend and backend only; use mode: full",
        ".targets",
    ),
    *(
        _rule(
            f"!has(self.to) || !has(self.to.{layer}) || (has(self.targets) ? "
            f"'{layer}' in self.targets : {default})",
            f"pinned but {layer} is not a selected target",
            f".to.{layer}",
        )
        for layer, default in (
            ("frontend", "true"),
            ("backend", "true"),
            ("database", "self.mode == 'full'"),
            ("storage", "self.mode == 'full'"),
        )
    ),
    _rule(
        "!has(self.to) || !has(self.to.restorePoint) || "
        "(!has(self.to.database) && !has(self.to.storage))",
        "comes instead of to.database and to.storage",
        ".to.restorePoint",
    ),
    _rule(
        "!has(self.to) || !has(self.to.restorePoint) || (has(self.targets) ? "
        "('database' in self.targets || 'storage' in self.targets) : self.mode == 'full')",
        "needs database or storage among the targets (mode: full)",
        ".to.restorePoint",
    ),
]
"""`rollback.RollbackSpec._consistent` (repeats: the list is a set)."""

POSITIVE_DURATION = [_rule("self.matches('[1-9]')", "must be greater than zero")]
"""`common.Duration`: its pattern admits `0s`; a zero cooldown or interval is refused."""

RESTORE_POINT_SPEC = [_rule("self == oldSelf", "is immutable: take another RestorePoint")]
"""A restore point is a record of what was taken: a changed spec would misdescribe it."""

BY_MODEL: dict[str, list[Rule]] = {
    "Threshold": [exactly_one(["above", "below"])],
    "Rule": RULE,
    "AutomaticRollback": AUTOMATIC_ROLLBACK,
    "RollbackPolicySpec": POLICY_SPEC,
    "RollbackSpec": ROLLBACK_SPEC,
    "RestorePointSpec": RESTORE_POINT_SPEC,
}
"""Rules by the name of the model whose schema carries them."""
