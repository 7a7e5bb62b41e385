"""A table of invalid manifests: each with the field its error must name.

`schema` says whether an API server with the generated CRDs refuses it, or only the operator's
models can (facts only the operator can look up); `cel` says that one of the CRD's CEL rules
refuses it (`api.cel`, the twins of the models' cross-field checks). `tests/schema.py` checks
the others without a server; `tests/apiserver/test_crd_rules.py` checks every one on a real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox import manifests


@dataclass(frozen=True)
class Case:
    """One invalid manifest."""

    id: str
    manifest: dict[str, Any]
    field: str  # must appear in the error message
    schema: bool  # the API server refuses it too
    cel: bool = False  # ... by a CEL rule (x-kubernetes-validations)


def _rb(**spec: Any) -> dict[str, Any]:
    return manifests.rollback(**spec)


def _pol(**spec: Any) -> dict[str, Any]:
    return manifests.policy(**spec)


def _rule(**fields: Any) -> dict[str, Any]:
    base = {"name": "err", "query": "up", "critical": {"above": 0.05}, "for": "5m"}
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


def _with_null_frontend_provider() -> dict[str, Any]:
    policy = _pol()
    policy["spec"]["targets"]["frontend"] = {"vercel": None}
    return policy


PROM = {"prometheus": {"url": "http://prometheus:9090"}}
NULL_THRESHOLDS = {"name": "err", "query": "up", "warning": None, "critical": None}

ROLLBACK_CASES = [
    Case(
        "restore-point-with-database-pin",
        _rb(mode="full", to={"restorePoint": {"name": "p"}, "database": {"backup": "x.dump"}}),
        "spec.to.restorePoint",
        True,
        cel=True,
    ),
    Case(
        "restore-point-in-quick-mode",
        _rb(to={"restorePoint": {"name": "p"}}),
        "spec.to.restorePoint",
        True,
        cel=True,
    ),
    Case("mode-unknown", _rb(mode="fast"), "spec.mode", True),
    Case("mode-wrong-type", _rb(mode=3), "spec.mode", True),
    Case("targets-unknown", _rb(targets=["frontend", "cdn"]), "spec.targets", True),
    Case("targets-not-a-list", _rb(targets="frontend"), "spec.targets", True),
    Case("targets-empty", _rb(targets=[]), "spec.targets", True),
    Case("targets-repeated", _rb(targets=["frontend", "frontend"]), "spec.targets", True),
    Case("policy-ref-missing", _rb(policyRef=None), "spec.policyRef", True),
    Case("policy-ref-empty-name", _rb(policyRef={"name": ""}), "spec.policyRef.name", True),
    Case("policy-ref-bad-name", _rb(policyRef={"name": "Mind_Mate"}), "spec.policyRef.name", True),
    Case("dry-run-not-bool", _rb(dryRun="maybe"), "spec.dryRun", True),
    Case("approval-not-bool", _rb(requireApproval=[]), "spec.requireApproval", True),
    Case("unknown-field", _rb(rollbackEverything=True), "spec", True),
    Case("reason-wrong-type", _rb(reason={"text": "x"}), "spec.reason", True),
    Case(
        "pin-missing-deployment-id", _rb(to={"frontend": {}}), "spec.to.frontend.deploymentId", True
    ),
    Case("pin-bad-time", _rb(mode="full", to={"storage": {"asOf": "yesterday"}}), "spec.to", True),
    Case(
        "pin-for-unselected-target",
        _rb(targets=["frontend"], to={"backend": {"deploymentId": "d-1"}}),
        "spec.to",
        True,
        cel=True,
    ),
    Case(
        "quick-mode-with-database",
        _rb(mode="quick", targets=["frontend", "database"]),
        "spec.targets",
        True,
        cel=True,
    ),
    Case(
        "quick-mode-database-pin",
        _rb(to={"database": {"backup": "b.dump"}}),
        "spec.to",
        True,
        cel=True,
    ),
]

POLICY_CASES = [
    Case(
        "threshold-both-above-and-below",
        _pol(metrics=PROM, rules=[_rule(critical={"above": 1, "below": 0})]),
        "spec.rules[0].critical",
        True,
    ),
    Case(
        "threshold-neither",
        _pol(metrics=PROM, rules=[_rule(critical={})]),
        "spec.rules[0].critical",
        True,
    ),
    Case(
        "duration-bad-for", _pol(metrics=PROM, rules=[_rule(**{"for": "5 minutes"})]), "for", True
    ),
    Case("duration-bad-interval", _pol(evaluationInterval="30"), "spec.evaluationInterval", True),
    Case(
        "duration-zero-interval",
        _pol(evaluationInterval="0s"),
        "spec.evaluationInterval",
        True,
        cel=True,
    ),
    Case(
        "duration-bad-cooldown",
        _pol(automaticRollback={"cooldown": "1 hour"}),
        "spec.automaticRollback.cooldown",
        True,
    ),
    Case(
        "rule-names-repeated",
        _pol(metrics=PROM, rules=[_rule(), _rule()]),
        "spec.rules",
        True,
    ),
    Case(
        "rule-without-thresholds",
        _pol(metrics=PROM, rules=[_rule(critical=None)]),
        "spec.rules[0]",
        True,
    ),
    Case(
        "auto-rollback-without-critical",
        _pol(metrics=PROM, rules=[_rule(critical=None, warning={"above": 1}, autoRollback=True)]),
        "spec.rules[0]",
        True,
        cel=True,
    ),
    Case(
        "warning-past-critical",
        _pol(metrics=PROM, rules=[_rule(warning={"above": 0.1})]),
        "spec.rules[0]",
        True,
        cel=True,
    ),
    Case(
        "warning-and-critical-opposite",
        _pol(metrics=PROM, rules=[_rule(warning={"below": 0.1})]),
        "spec.rules[0]",
        True,
        cel=True,
    ),
    Case(
        "threshold-set-to-null",
        _pol(metrics=PROM, rules=[_rule(critical={"above": None})]),
        "spec.rules[0].critical",
        True,
        cel=True,
    ),
    Case(
        "thresholds-both-null",
        _pol(metrics=PROM, rules=[NULL_THRESHOLDS]),
        "spec.rules[0]",
        True,
        cel=True,
    ),
    Case("no-data-unknown", _pol(metrics=PROM, rules=[_rule(noData="panic")]), "noData", True),
    Case("rules-without-metrics", _pol(rules=[_rule()]), "spec.metrics", True, cel=True),
    Case(
        "secret-ref-missing-key",
        _pol(targets={"frontend": {"vercel": {"tokenSecretRef": {"name": "vercel", "key": None}}}}),
        "tokenSecretRef.key",
        True,
    ),
    Case(
        "secret-ref-missing-name",
        _pol(targets={"database": {"postgres": {"urlSecretRef": {"name": None}}}}),
        "urlSecretRef.name",
        True,
    ),
    Case(
        "postgres-schema-of-the-system",
        _pol(targets={"database": {"postgres": {"schemas": ["public", "pg_catalog"]}}}),
        "schemas",
        True,
    ),
    Case(
        "postgres-schema-not-lowercase",
        _pol(targets={"database": {"postgres": {"schemas": ["Public"]}}}),
        "schemas",
        True,
    ),
    Case(
        "postgres-schema-of-the-operator",
        _pol(targets={"database": {"postgres": {"schemas": ["rollback_operator"]}}}),
        "schemas",
        True,
        cel=True,
    ),
    Case(
        "postgres-schemas-empty",
        _pol(targets={"database": {"postgres": {"schemas": []}}}),
        "schemas",
        True,
    ),
    Case(
        "railway-token-type-unknown",
        _pol(targets={"backend": {"railway": {"tokenType": "team"}}}),
        "tokenType",
        True,
    ),
    Case(
        "railway-missing-service",
        _pol(targets={"backend": {"railway": {"serviceId": None}}}),
        "serviceId",
        True,
    ),
    Case(
        "auto-targets-unknown",
        _pol(automaticRollback={"targets": ["frontend", "dns"]}),
        "spec.automaticRollback.targets",
        True,
    ),
    Case(
        "auto-targets-not-defined",
        _pol(
            targets={"backend": None},
            metrics=PROM,
            rules=[_rule(autoRollback=True)],
        ),
        "spec.automaticRollback.targets",
        True,
        cel=True,
    ),
    Case(
        "auto-quick-with-database",
        _pol(automaticRollback={"mode": "quick", "targets": ["database"]}),
        "spec.automaticRollback.targets",
        True,
        cel=True,
    ),
    Case(
        "provider-block-null",
        _with_null_frontend_provider(),
        "spec.targets.frontend",
        True,
        cel=True,
    ),
    Case(
        "max-rollbacks-zero",
        _pol(automaticRollback={"maxRollbacks": {"count": 0}}),
        "spec.automaticRollback.maxRollbacks.count",
        True,
    ),
    Case(
        "database-without-object-store", _pol(objectStore=None), "spec.objectStore", True, cel=True
    ),
    Case(
        "api-url-not-a-url", _pol(metrics={"prometheus": {"url": "prometheus:9090"}}), "url", True
    ),
    Case("suspend-not-bool", _pol(suspend="no"), "spec.suspend", True),
    Case(
        "restore-points-schedule-not-cron",
        _pol(restorePoints={"schedule": "every six hours"}),
        "spec.restorePoints.schedule",
        True,
    ),
    Case(
        "restore-points-schedule-out-of-range",
        _pol(restorePoints={"schedule": "61 * * * *"}),
        "spec.restorePoints.schedule",
        False,  # five fields of the right characters: only croniter knows minute 61 is none
    ),
    Case(
        "restore-points-keep-zero",
        _pol(restorePoints={"schedule": "0 * * * *", "keep": {"count": 0}}),
        "spec.restorePoints.keep.count",
        True,
    ),
    Case(
        "restore-points-without-database-or-storage",
        _pol(
            targets={"database": None, "storage": None},
            objectStore=None,
            restorePoints={"schedule": "0 * * * *"},
        ),
        "spec.restorePoints",
        True,
        cel=True,
    ),
    Case(
        "health-check-status-range",
        _pol(
            verification={
                "healthChecks": [{"name": "api", "url": "https://x/health", "expectStatus": 99}]
            }
        ),
        "expectStatus",
        True,
    ),
]

ALL_CASES = ROLLBACK_CASES + POLICY_CASES
