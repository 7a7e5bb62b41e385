"""Every state of every kind, as the operator's own code writes it: the GitOps tests' inputs.

Why built, not hand-written: a health check is only right if it reads the conditions the
operator really sets. Rollback states come from `reconcile.transitions` (the phase table),
RollbackPolicy states from the validation handler and `reconcile.evaluation.summarize`,
RestorePoint states from `reconcile.points`, so a change of a condition there changes these
samples and the Argo CD and kstatus tests judge the new truth. Statuses start as the API
server serves a new object (the CRDs default `observedGeneration` to 0).

`python -m tests.gitops.samples --write` refreshes the Argo CD testdata files from these.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kopf
import yaml

from rollback_operator.api.conditions import Condition, ConditionType, Reason, set_condition
from rollback_operator.api.policy import RollbackPolicy, RollbackPolicyStatus
from rollback_operator.api.restorepoint import PointPhase, RestorePoint, RestorePointStatus
from rollback_operator.api.rollback import Phase, RollbackStatus
from rollback_operator.api.rules import RuleState, RuleStatus
from rollback_operator.handlers import policy as policy_handlers
from rollback_operator.reconcile import evaluation, points, transitions
from rollback_operator.reconcile.rules import Observation

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
GROUP_DIR = Path(__file__).parents[2] / "integrations" / "argocd" / "rollback.mindmate.app"
API_VERSION = "rollback.mindmate.app/v1alpha1"
Body = dict[str, Any]


def _object(kind: str, name: str, spec: Body, status: Body | None, generation: int = 1) -> Body:
    body: Body = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": "prod", "generation": generation},
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


# --- Rollback ---------------------------------------------------------------------------------

ROLLBACK_SPEC: Body = {"policyRef": {"name": "mindmate"}, "mode": "full", "reason": "errors"}


def _rollback(name: str, status: RollbackStatus | None) -> Body:
    return _object("Rollback", name, ROLLBACK_SPEC, status.wire() if status else None)


def _entered(phase: Phase, message: str) -> RollbackStatus:
    status = RollbackStatus(observed_generation=0)
    transitions.enter(status, phase, message, now=NOW, generation=1)
    return status


def _with(status: RollbackStatus, type_: ConditionType, value: bool, reason: Reason,
          message: str) -> RollbackStatus:  # fmt: skip
    transitions.mark(status, type_, value, reason, message, now=NOW, generation=1)
    return status


def _invalid() -> RollbackStatus:
    status = RollbackStatus(observed_generation=0)
    transitions.invalid(status, "spec.to.database.backup: no such backup", now=NOW, generation=1)
    return status


ROLLBACK_PHASES = {
    "pending": Phase.PENDING,
    "planning": Phase.PLANNING,
    "planned": Phase.PLANNED,
    "awaiting-approval": Phase.AWAITING_APPROVAL,
    "queued": Phase.QUEUED,
    "running": Phase.RUNNING,
    "verifying": Phase.VERIFYING,
    "succeeded": Phase.SUCCEEDED,
    "partially-failed": Phase.PARTIALLY_FAILED,
    "failed": Phase.FAILED,
    "aborted": Phase.ABORTED,
}


def rollbacks() -> dict[str, Body]:
    """Each phase, bad input, traffic left stopped or given back, a refused spec change."""
    found = {"no-status": _rollback("no-status", None)}
    for name, phase in ROLLBACK_PHASES.items():
        found[name] = _rollback(name, _entered(phase, f"{phase.value} for the test"))
    how = "frontend (Vercel project paused); kubectl rollback resume-traffic NAME"
    stopped = _with(_entered(Phase.FAILED, "restore-database failed"),
                    ConditionType.TRAFFIC_STOPPED, True, Reason.KEPT_STOPPED, how)  # fmt: skip
    resumed = _with(_entered(Phase.ABORTED, "aborted"), ConditionType.TRAFFIC_STOPPED, False,
                    Reason.RESUMED, "every layer serves again")  # fmt: skip
    refused = _with(_entered(Phase.RUNNING, "running"), ConditionType.SPEC_CHANGE_REFUSED, True,
                    Reason.SPEC_IMMUTABLE, "spec.mode changed after the start")  # fmt: skip
    more = {"invalid": _invalid(), "failed-traffic-stopped": stopped,
            "aborted-traffic-resumed": resumed, "spec-change-refused": refused}  # fmt: skip
    for name, status in more.items():
        found[name] = _rollback(name, status)
    return found


# --- RollbackPolicy ---------------------------------------------------------------------------


def policy_spec(suspend: bool = False) -> Body:
    """The smallest valid policy spec with one rule."""
    return {
        "suspend": suspend,
        "targets": {"frontend": {"vercel": {"projectId": "prj_1",
                                            "tokenSecretRef": {"name": "v", "key": "t"}}}},
        "metrics": {"prometheus": {"url": "http://prometheus.monitoring:9090"}},
        "automaticRollback": {"mode": "quick", "targets": ["frontend"]},
        "rules": [{"name": "api-errors", "query": "vector(0)", "warning": {"above": 0.02},
                   "critical": {"above": 0.05}, "for": "5m", "autoRollback": True}],
    }  # fmt: skip


def _validated(problem: str | None, generation: int = 1) -> list[Condition]:
    raw: Any = {"metadata": {"generation": generation}, "status": {}}
    body = kopf.Body(raw)
    deps = SimpleNamespace(clock=SimpleNamespace(now=lambda: NOW))
    wired = policy_handlers._conditions(body, problem, deps)  # type: ignore[arg-type]
    return [Condition.model_validate(c) for c in wired]


def _evaluated(state: RuleState, seen: Observation, suspend: bool = False) -> Body:
    policy = RollbackPolicy.model_validate(
        _object("RollbackPolicy", "p", policy_spec(suspend), {"observedGeneration": 1})
    )
    rule = RuleStatus(name="api-errors", state=state, value=seen.value, message="value 0.08")
    status = RollbackPolicyStatus(conditions=_validated(None), rules=[rule])
    return evaluation.summarize(policy, status, [seen], NOW).wire()


def _refused() -> Body:
    status = RollbackPolicyStatus.model_validate(_evaluated(RuleState.CRITICAL, _seen(0.08)))
    conditions = set_condition(
        status.conditions, ConditionType.STALLED, True, Reason.ROLLBACK_REFUSED,
        "No automatic rollback can be created: forbidden", now=NOW, generation=1,
    )  # fmt: skip
    return status.model_copy(update={"conditions": conditions}).wire()


def _seen(value: float | None, error: str | None = None, unreachable: bool = False) -> Observation:
    return Observation(NOW, value, error=error, unreachable=unreachable)


def policies() -> dict[str, Body]:
    """Not yet seen, a newer spec, invalid, valid, each outcome of an evaluation, suspended."""
    ok, high = _seen(0.001), _seen(0.08)
    down = _seen(None, "connection refused", unreachable=True)
    bad = _seen(None, "bad_data: parse error")
    statuses: dict[str, tuple[Body | None, bool, int]] = {
        "no-status": (None, False, 1),
        "generation-ahead": ({"observedGeneration": 1, "conditions": _wire(_validated(None))},
                             False, 2),
        "invalid": ({"observedGeneration": 1,
                     "conditions": _wire(_validated("spec.rules[0].for: not a duration"))},
                    False, 1),
        "valid": ({"observedGeneration": 1, "conditions": _wire(_validated(None))}, False, 1),
        "clear": (_evaluated(RuleState.OK, ok), False, 1),
        "breaching": (_evaluated(RuleState.CRITICAL, high), False, 1),
        "metrics-unreachable": (_evaluated(RuleState.ERROR, down), False, 1),
        "query-failed": (_evaluated(RuleState.ERROR, bad), False, 1),
        "rollback-refused": (_refused(), False, 1),
        "suspended": (_evaluated(RuleState.CRITICAL, high, suspend=True), True, 1),
    }  # fmt: skip
    return {
        name: _object("RollbackPolicy", name, policy_spec(suspend), status, generation)
        for name, (status, suspend, generation) in statuses.items()
    }


def _wire(conditions: list[Condition]) -> list[Body]:
    return [c.wire() for c in conditions]


# --- RestorePoint -----------------------------------------------------------------------------

POINT_SPEC: Body = {"policyRef": {"name": "mindmate"}, "reason": "before release 42"}
POINT_PHASES = {"running": PointPhase.RUNNING, "succeeded": PointPhase.SUCCEEDED,
                "failed": PointPhase.FAILED}  # fmt: skip


def _point(name: str, status: RestorePointStatus | Body | None) -> Body:
    wired = status.wire() if isinstance(status, RestorePointStatus) else status
    return _object("RestorePoint", name, POINT_SPEC, wired)


def restore_points() -> dict[str, Body]:
    """Not yet seen, as the API server serves a new one, each phase, and a refused spec."""
    point = RestorePoint.model_validate(_object("RestorePoint", "p", POINT_SPEC, None))
    served = {"observedGeneration": 0, "phase": "Pending"}  # before the operator starts it
    found = {"no-status": _point("no-status", None), "pending": _point("pending", served)}
    for name, phase in POINT_PHASES.items():
        status = RestorePointStatus(observed_generation=0)
        points._enter(status, phase, f"{phase.value} for the test", point, NOW)
        found[name] = _point(name, status)
    invalid = RestorePointStatus(observed_generation=0)
    points.invalid(invalid, "spec.policyRef: no RollbackPolicy mindmate", 1, NOW)
    found["invalid"] = _point("invalid", invalid)
    return found


SAMPLES: dict[str, Callable[[], dict[str, Body]]] = {
    "Rollback": rollbacks,
    "RollbackPolicy": policies,
    "RestorePoint": restore_points,
}


def testdata(kind: str) -> dict[Path, str]:
    """The Argo CD testdata files of `kind`: path -> YAML text."""
    return {
        GROUP_DIR / kind / "testdata" / f"{name}.yaml": yaml.safe_dump(body, sort_keys=False)
        for name, body in SAMPLES[kind]().items()
    }


def main(argv: list[str]) -> int:
    """`--write`: refresh every testdata file."""
    if argv != ["--write"]:
        print("usage: python -m tests.gitops.samples --write", file=sys.stderr)
        return 2
    for kind in SAMPLES:
        for path, text in testdata(kind).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
