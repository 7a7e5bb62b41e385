"""examples/mindmate-policy.yaml says exactly what the runbook says.

The runbook ("Mind Mate Production Rollback Plan") is quoted below line by line, each quote
with the value it means; every test reads the example as YAML and holds it to those values, so
a threshold edited in the example (or a section dropped) fails here. The last tests run the
warning-only rules (memory, user reports) against the real Prometheus: they warn once per
episode and never roll back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import yaml

from rollback_operator.api.common import parse_duration
from rollback_operator.api.policy import RollbackPolicy, StatuspageIncident
from sandbox.services.prometheus import PrometheusServer
from tests.metrics.conftest import MakeHarness
from tests.metrics.test_example_policy import EXAMPLE, example
from tests.metrics.world import Series, minutes, origin

Manifest = dict[str, Any]

# "Automatic Rollback Conditions": rule, direction, critical level, `for`.
AUTOMATIC = {
    "api-error-rate": ("above", 0.05, "5m"),  # API error rate > 5% for 5 minutes
    "frontend-error-rate": ("above", 0.02, "5m"),  # Frontend error rate > 2% for 5 minutes
    "database-connection-failures": ("above", 10, None),  # Database connection failures > 10/minute
    "cache-hit-rate": ("below", 0.80, "15m"),  # Cache hit rate < 80% for 15 minutes
}
# "Alert Thresholds": | Metric | Warning | Critical | Auto-rollback |
ALERT_TABLE = {
    "api-error-rate": (0.02, 0.05, True),  # | Error Rate | 2% | 5% | Yes |
    "response-time": (0.5, 1.0, False),  # | Response Time | 500ms | 1000ms | No |
    "cache-hit-rate": (0.85, 0.80, True),  # | Cache Hit | 85% | 80% | Yes |
    "database-connections": (0.8, 0.9, True),  # | DB Connections | 80% | 90% | Yes |
}
# "Manual Rollback Conditions" a metric shows, as warnings: rule, warning level, query marks.
MANUAL = {
    "performance-vs-last-week": (1.5, ("[1h]", "offset 1w")),  # Performance degradation > 50%
    "user-reported-issues": (100, ("[1h]",)),  # User-reported issues > 100 in 1 hour
}
# "Emergency Contacts": every address and number.
CONTACTS = {
    "infrastructure@mindmate.app",  # Primary
    "devops@mindmate.app",  # Secondary
    "+1-XXX-XXX-XXXX",  # Emergency
    "support@vercel.com",  # Vercel Support
    "support@railway.app",  # Railway Support
    "support@supabase.com",  # Supabase Support
}
# "External Communication": the status page update.
STATUS_PAGE = {
    "title": "Service Degradation",
    "status": "investigating",  # Status: Investigating
    "impact": "major",  # Impact: High (Statuspage's levels: none, minor, major, critical)
    "message": "We're currently experiencing issues and have initiated a rollback to restore "
    "service.",
}


@pytest.fixture(scope="module")
def spec() -> Manifest:
    body: Manifest = yaml.safe_load(EXAMPLE.read_text())
    RollbackPolicy.model_validate({**body, "metadata": {**body["metadata"], "uid": "u"}})
    found: Manifest = body["spec"]
    return found


def _rules(spec: Manifest) -> dict[str, Manifest]:
    return {r["name"]: r for r in spec["rules"]}


@pytest.mark.parametrize("name", sorted(AUTOMATIC))
def test_each_automatic_condition_rolls_back_at_the_runbooks_level(
    spec: Manifest, name: str
) -> None:
    direction, level, hold = AUTOMATIC[name]
    rule = _rules(spec)[name]
    assert rule["critical"] == {direction: level}
    assert rule["autoRollback"] is True
    if hold is not None:
        assert rule["for"] == hold
    else:  # "per minute": a one-minute count
        assert "[1m]" in rule["query"]


@pytest.mark.parametrize("name", sorted(ALERT_TABLE))
def test_each_row_of_the_alert_table_is_a_rule_with_its_levels(spec: Manifest, name: str) -> None:
    warning, critical, automatic = ALERT_TABLE[name]
    rule = _rules(spec)[name]
    direction = "below" if name == "cache-hit-rate" else "above"
    assert rule["warning"] == {direction: warning}
    assert rule["critical"] == {direction: critical}
    assert rule["autoRollback"] is automatic


def test_only_the_runbooks_automatic_conditions_roll_back(spec: Manifest) -> None:
    automatic = {n for n, r in _rules(spec).items() if r.get("autoRollback")}
    table = {n for n, (_, _, auto) in ALERT_TABLE.items() if auto}
    assert automatic == set(AUTOMATIC) | table
    assert spec["automaticRollback"]["mode"] == "quick"  # the 1-click emergency rollback
    assert spec["automaticRollback"]["targets"] == ["frontend", "backend"]


@pytest.mark.parametrize("name", sorted(MANUAL))
def test_manual_conditions_a_metric_shows_only_warn(spec: Manifest, name: str) -> None:
    level, marks = MANUAL[name]
    rule = _rules(spec)[name]
    assert rule["warning"] == {"above": level}
    assert "critical" not in rule
    assert not rule.get("autoRollback")
    for mark in marks:
        assert mark in rule["query"]


def test_memory_usage_is_watched_and_never_rolls_back(spec: Manifest) -> None:
    [rule] = [r for r in spec["rules"] if "memory" in r["query"]]
    assert rule["warning"]
    assert "critical" not in rule
    assert not rule.get("autoRollback")


def test_the_verification_checklist_covers_every_item(spec: Manifest) -> None:
    checks = spec["verification"]
    urls = {c["url"] for c in checks["healthChecks"]}
    assert urls == {"https://api.mindmate.app/health", "https://mindmate.app/health"}
    queries = {c["name"]: c["query"] for c in checks["sqlChecks"]}
    assert queries["database-queries"] == "SELECT 1"  # database queries successful
    assert queries["user-data-intact"] == "SELECT COUNT(*) FROM users"  # the runbook's query
    assert "audit_logs" in queries["audit-log-continuous"]
    assert checks["storage"] is True  # storage accessible, file storage complete
    assert checks["cache"]["urlSecretRef"]  # cache functioning
    # Response times and error rates back to baseline: watched longer than any rate window.
    windows = [parse_duration(w) for r in spec["rules"] for w in ("1m", "5m") if w in r["query"]]
    assert parse_duration(checks["window"]) > max(windows)


def test_both_channels_of_the_communication_plan_are_notified(spec: Manifest) -> None:
    notifications = spec["notifications"]
    assert notifications["slack"]["webhookSecretRef"]
    assert notifications["statuspage"]["incident"] == STATUS_PAGE


def test_the_status_page_defaults_are_the_runbooks_words() -> None:
    assert StatuspageIncident().model_dump() == STATUS_PAGE


def test_every_emergency_contact_is_listed(spec: Manifest) -> None:
    listed = {c.get("email") or c.get("phone") for c in spec["contacts"]}
    assert listed == CONTACTS


def test_the_targets_are_the_runbooks_services_and_buckets(spec: Manifest) -> None:
    targets = spec["targets"]
    assert set(targets) == {"frontend", "backend", "database", "storage"}
    assert targets["database"]["postgres"]["backups"] == {
        "bucket": "mindmate-backups", "prefix": "database/"
    }  # fmt: skip
    assert targets["storage"]["s3"]["bucket"] == "mindmate-files"


# --- the warning-only rules against the real Prometheus ----------------------------------------

WARNINGS = ["memory-usage", "user-reported-issues"]


def _write(series: Series, rule: str, t0: datetime, t1: datetime) -> None:
    """Healthy for 5 minutes, past the warning level for 25, healthy again."""

    def bad(t: datetime) -> bool:
        return t0 + minutes(5) <= t < t0 + minutes(30)

    if rule == "memory-usage":
        series.gauge("process_resident_memory_bytes", t0, t1,
                     lambda t: 1.9e9 if bad(t) else 6e8, service="api")  # fmt: skip
    else:  # 400 reports an hour while bad (past 100 after 15 minutes), a handful otherwise
        series.counter("user_reported_issues_total", t0, t1,
                       lambda t: 400 / 3600 if bad(t) else 2 / 3600)  # fmt: skip


@pytest.mark.parametrize("rule", WARNINGS)
async def test_a_warning_only_rule_warns_once_and_never_rolls_back(
    rule: str, prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    _write(series, rule, t0, t0 + minutes(100))
    run = harness(example(prometheus.url, series.label))
    await run.run(t0 + minutes(1), t0 + minutes(100))

    assert run.first(rule, "Warning") is not None, run.states(rule)
    assert run.states(rule)[-1][1] == "Ok"
    assert run.host.reasons().count("RuleWarning") == 1
    assert "RuleCritical" not in run.host.reasons()
    assert run.host.rollbacks == []
