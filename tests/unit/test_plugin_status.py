"""`kubectl rollback status NAME` shows why a rollback ended as it did: checks and rule values."""

from __future__ import annotations

from typing import Any

from rollback_operator import plugin_view
from sandbox import manifests


def _body(**status: Any) -> dict[str, Any]:
    body = manifests.stored(manifests.rollback("rb-7"))
    body["status"] = {"phase": "PartiallyFailed", "message": "verification failed", **status}
    return body


def test_status_lists_each_check_and_each_rule_over_the_rollback() -> None:
    shown = plugin_view.status(_body(
        verification=[
            {"name": "api", "passed": True, "message": "200 in 45ms"},
            {"name": "rule api-error-rate", "passed": False,
             "message": "0.12 past critical > 0.05 for 1m at 03:04:05 UTC"},
        ],
        monitoring=[
            {"name": "api-error-rate", "thresholds": "critical > 0.05", "samples": 19,
             "min": 0.003, "max": 0.5, "last": 0.12, "worst": "Critical"},
            {"name": "db-connections", "message": "prometheus: 503"},
        ],
    ))  # fmt: skip
    lines = shown.splitlines()
    assert "  PASS api: 200 in 45ms" in lines
    assert "  FAIL rule api-error-rate: 0.12 past critical > 0.05 for 1m at 03:04:05 UTC" in lines
    row = next(line for line in lines if line.startswith("api-error-rate"))
    assert row.split() == ["api-error-rate", "0.003", "0.5", "0.12", "Critical", "critical", ">",
                           "0.05"]  # fmt: skip
    assert any(line.startswith("db-connections") and "prometheus: 503" in line for line in lines)


def test_status_without_checks_or_rules_shows_neither_section() -> None:
    shown = plugin_view.status(_body())
    assert "Verification:" not in shown
    assert "Monitoring during the rollback:" not in shown


def test_the_plan_names_each_trigger_a_restore_carries_over() -> None:
    trigger = "trigger on_auth_user_created on auth.users (calls public.handle_new_user())"
    body: dict[str, Any] = {"status": {"plan": {"database": {
        "backup": "backup_latest.dump", "dataLossWindow": "2h", "carriedTriggers": [trigger],
    }}}}  # fmt: skip

    shown = plugin_view.plan(body).splitlines()

    assert shown[0].split() == ["database", "restore", "backup_latest.dump", "(data-loss",
                                "window", "2h)"]  # fmt: skip
    assert shown[1].strip() == f"keeps {trigger} through it"
