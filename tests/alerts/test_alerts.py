"""The chart's PrometheusRule and Grafana dashboard: valid, unit-tested, on metrics that exist.

The rules are rendered by the real helm (as a user gets them), then checked and unit-tested by
promtool (Debian's prometheus package ships it); rules_test.yaml holds the promtool cases.
Every metric the rules and the dashboard read must be one the operator exposes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_operator.telemetry.metrics import Telemetry
from tests.chart.helm import CHART, HelmError, helm

HERE = Path(__file__).parent
DASHBOARD = CHART / "files" / "dashboards" / "rollback-operator.json"
METRIC = re.compile(r"\brollback_operator_[a-z_]+")
ENABLED = [
    "--set",
    "metrics.prometheusRule.enabled=true",
    "--set",
    "metrics.dashboard.enabled=true",
]


def _promtool(*args: str, cwd: Path) -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: scripts/install-system-deps.sh installs prometheus"
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _render(*values: str) -> list[dict[str, Any]]:
    text = helm("template", "rollback-operator", str(CHART), "--namespace", "operators", *values)
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return _render(*ENABLED)


@pytest.fixture(scope="module")
def groups(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (rule,) = [d for d in rendered if d["kind"] == "PrometheusRule"]
    found: list[dict[str, Any]] = rule["spec"]["groups"]
    return found


def _exposed() -> set[str]:
    """Every sample name the operator's registry can expose."""
    names: set[str] = set()
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    for family in Telemetry().registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, [""]))
    return names


def test_the_rules_pass_promtool_check_and_every_unit_test(
    groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(HERE / "rules_test.yaml", tmp_path / "rules_test.yaml")
    assert "SUCCESS: 11 rules found" in _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert "SUCCESS" in _promtool("test", "rules", "rules_test.yaml", cwd=tmp_path)


def test_every_alert_has_a_unit_test_where_it_fires(groups: list[dict[str, Any]]) -> None:
    alerts = {r["alert"] for g in groups for r in g["rules"]}
    assert alerts == {
        "RollbackOperatorDown", "RollbackFailed", "RollbackStuck", "RollbackNotStarting",
        "RollbackAwaitingApproval", "RollbackTrafficStopped", "RollbackPolicyMetricsUnreachable",
        "RollbackPolicyRuleFailing", "AutomaticRollbackSuppressed", "RestorePointFailing",
        "RestorePointStale",
    }  # fmt: skip
    cases = yaml.safe_load((HERE / "rules_test.yaml").read_text())["tests"]
    fired = {c["alertname"] for t in cases for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert fired == alerts


def test_the_rules_read_only_metrics_the_operator_exposes(groups: list[dict[str, Any]]) -> None:
    used = {m for g in groups for r in g["rules"] for m in METRIC.findall(r["expr"])}
    assert used
    assert used <= _exposed(), used - _exposed()


def test_the_operator_down_alert_watches_this_release_s_metrics_service(
    groups: list[dict[str, Any]],
) -> None:
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    expr = rules["RollbackOperatorDown"]["expr"]
    assert expr == 'absent(up{job="rollback-operator-metrics", namespace="operators"} == 1)'


def test_thresholds_are_values() -> None:
    (rule,) = [d for d in _render(*ENABLED, "--set", "metrics.prometheusRule.runningForSeconds=600")
               if d["kind"] == "PrometheusRule"]  # fmt: skip
    stuck = next(
        r for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "RollbackStuck"
    )
    assert stuck["expr"].endswith("> 600")


@pytest.mark.parametrize(
    "value",
    ["metrics.prometheusRule.runningForSeconds=2h", "metrics.prometheusRule.trafficStoppedFor=soon",
     "metrics.dashboard.labels=grafana"],
)  # fmt: skip
def test_the_schema_refuses_a_threshold_or_label_of_the_wrong_shape(value: str) -> None:
    with pytest.raises(HelmError, match="values don't meet the specifications of the schema"):
        _render(*ENABLED, "--set", value)


def test_nothing_is_rendered_unless_asked() -> None:
    kinds = [(d["kind"], d["metadata"]["name"]) for d in _render()]
    assert ("PrometheusRule", "rollback-operator") not in kinds
    assert ("ConfigMap", "rollback-operator-dashboard") not in kinds


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets") or []]


def test_the_dashboard_config_map_carries_the_dashboard_for_the_sidecar(
    rendered: list[dict[str, Any]],
) -> None:
    (config_map,) = [d for d in rendered if d["metadata"]["name"] == "rollback-operator-dashboard"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["rollback-operator.json"]) == json.loads(
        DASHBOARD.read_text()
    )


def test_the_dashboard_shows_rule_values_against_thresholds_results_and_step_durations() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    by_title = {p["title"]: _dashboard_exprs({"panels": [p]}) for p in dashboard["panels"]}
    against = " ".join(by_title["Rule values against their thresholds"])
    assert "rollback_operator_policy_rule_value" in against
    assert "rollback_operator_policy_rule_threshold" in against
    assert "by (result)" in by_title["Rollbacks by result (over the range)"][0]
    assert "rollback_operator_step_duration_seconds" in by_title["Step duration p95 by step"][0]


def test_every_dashboard_query_is_valid_promql_on_exposed_metrics(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = _dashboard_exprs(dashboard)
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert used <= _exposed(), used - _exposed()
    grafana = {"$__rate_interval": "5m", "$__range": "1h", "$namespace": ".*", "$policy": ".*",
               "$rule": ".*"}  # fmt: skip
    rules = []
    for n, expr in enumerate(exprs):
        for variable, value in grafana.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{n}", "expr": expr})
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]})
    )
    assert f"SUCCESS: {len(exprs)} rules found" in _promtool("check", "rules", "queries.yaml",
                                                              cwd=tmp_path)  # fmt: skip
