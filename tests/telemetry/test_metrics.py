"""The instruments record exactly what they are told, in their own registry, and serve it."""

from __future__ import annotations

import urllib.request

from rollback_operator.telemetry.metrics import Telemetry, ThresholdLine


def test_a_finished_rollback_counts_once_with_its_labels_and_duration() -> None:
    t = Telemetry()
    t.rollback_finished(mode="quick", trigger="manual", result="Succeeded", seconds=12.5)
    get = t.registry.get_sample_value
    assert (
        get(
            "rollback_operator_rollbacks_total",
            {"mode": "quick", "trigger": "manual", "result": "Succeeded"},
        )
        == 1
    )
    labels = {"mode": "quick", "result": "Succeeded"}
    assert get("rollback_operator_rollback_duration_seconds_count", labels) == 1
    assert get("rollback_operator_rollback_duration_seconds_sum", labels) == 12.5
    assert get("rollback_operator_rollback_duration_seconds_bucket", {**labels, "le": "10.0"}) == 0
    assert get("rollback_operator_rollback_duration_seconds_bucket", {**labels, "le": "30.0"}) == 1


def test_a_rollback_that_never_ran_steps_is_counted_without_a_duration() -> None:
    t = Telemetry()
    t.rollback_finished(mode="full", trigger="gitops", result="Planned", seconds=None)
    get = t.registry.get_sample_value
    assert (
        get(
            "rollback_operator_rollbacks_total",
            {"mode": "full", "trigger": "gitops", "result": "Planned"},
        )
        == 1
    )
    assert (
        get(
            "rollback_operator_rollback_duration_seconds_count",
            {"mode": "full", "result": "Planned"},
        )
        is None
    )


def test_two_registries_never_share_counts() -> None:
    first, second = Telemetry(), Telemetry()
    first.step_finished(step="frontend-rollback", target="frontend", seconds=0.3)
    labels = {"step": "frontend-rollback", "target": "frontend"}
    assert (
        first.registry.get_sample_value("rollback_operator_step_duration_seconds_count", labels)
        == 1
    )
    assert (
        second.registry.get_sample_value("rollback_operator_step_duration_seconds_count", labels)
        is None
    )


def test_rule_values_follow_the_latest_round_and_vanish_without_a_value() -> None:
    t = Telemetry()
    get = t.registry.get_sample_value
    t.rule_values("prod", "mindmate", {"errors": 0.08, "latency": 0.2})
    t.rule_values("prod", "mindmate", {"errors": 0.01, "latency": None})
    assert (
        get(
            "rollback_operator_policy_rule_value",
            {"rollback_namespace": "prod", "policy": "mindmate", "rule": "errors"},
        )
        == 0.01
    )
    assert (
        get(
            "rollback_operator_policy_rule_value",
            {"rollback_namespace": "prod", "policy": "mindmate", "rule": "latency"},
        )
        is None
    )
    t.rule_values("prod", "mindmate", {})
    assert (
        get(
            "rollback_operator_policy_rule_value",
            {"rollback_namespace": "prod", "policy": "mindmate", "rule": "errors"},
        )
        is None
    )


def test_thresholds_are_replaced_as_a_whole_when_the_spec_changes() -> None:
    t = Telemetry()
    get = t.registry.get_sample_value
    base = {"rollback_namespace": "prod", "policy": "mindmate", "rule": "errors"}
    lines = [ThresholdLine("errors", "warning", "above", 0.02),
             ThresholdLine("errors", "critical", "above", 0.05)]  # fmt: skip
    t.thresholds("prod", "mindmate", lines)
    t.thresholds("prod", "mindmate", [ThresholdLine("errors", "critical", "above", 0.1)])
    assert (
        get(
            "rollback_operator_policy_rule_threshold",
            {**base, "severity": "critical", "direction": "above"},
        )
        == 0.1
    )
    assert (
        get(
            "rollback_operator_policy_rule_threshold",
            {**base, "severity": "warning", "direction": "above"},
        )
        is None
    )


def test_breaches_and_suppressions_add_up_per_label_set() -> None:
    t = Telemetry()
    get = t.registry.get_sample_value
    t.breach("prod", "mindmate", "errors", "warning")
    t.breach("prod", "mindmate", "errors", "critical")
    t.suppression("prod", "mindmate", "Cooldown", 2)
    t.suppression("prod", "mindmate", "Cooldown")
    base = {"rollback_namespace": "prod", "policy": "mindmate"}
    assert (
        get(
            "rollback_operator_policy_breaches_total",
            {**base, "rule": "errors", "severity": "warning"},
        )
        == 1
    )
    assert (
        get(
            "rollback_operator_policy_breaches_total",
            {**base, "rule": "errors", "severity": "critical"},
        )
        == 1
    )
    assert (
        get(
            "rollback_operator_automatic_rollbacks_suppressed_total", {**base, "reason": "Cooldown"}
        )
        == 3
    )


def test_serve_exposes_the_registry_over_http_and_close_frees_the_port() -> None:
    t = Telemetry()
    t.rollback_finished(mode="quick", trigger="automatic", result="Failed", seconds=3.0)
    server = t.serve(0, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics") as answer:
            text = answer.read().decode()
    finally:
        server.close()
    assert (
        'rollback_operator_rollbacks_total{mode="quick",result="Failed",trigger="automatic"} 1.0'
        in text
    )
    assert "# TYPE rollback_operator_step_duration_seconds histogram" in text
    assert "python_gc" not in text  # not the global registry
