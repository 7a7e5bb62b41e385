"""Argo CD health checks and resource actions, run as Lua on every state the operator writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gitops import argocd_cm, lua, samples

KIND_DIR = samples.GROUP_DIR
ANNOTATION = "rollback.mindmate.app/"

# The claims: every state of every kind and the Argo CD health it must show.
HEALTH: dict[str, dict[str, str]] = {
    "Rollback": {
        "no-status": "Progressing", "pending": "Progressing", "planning": "Progressing",
        "planned": "Healthy", "awaiting-approval": "Suspended", "queued": "Progressing",
        "running": "Progressing", "verifying": "Progressing", "succeeded": "Healthy",
        "partially-failed": "Degraded", "failed": "Degraded", "aborted": "Degraded",
        "invalid": "Degraded", "failed-traffic-stopped": "Degraded",
        "aborted-traffic-resumed": "Degraded", "spec-change-refused": "Degraded",
    },
    "RollbackPolicy": {
        "no-status": "Progressing", "generation-ahead": "Progressing", "invalid": "Degraded",
        "valid": "Healthy", "clear": "Healthy", "breaching": "Healthy",
        "metrics-unreachable": "Degraded", "query-failed": "Degraded",
        "rollback-refused": "Degraded", "suspended": "Suspended",
    },
    "RestorePoint": {
        "no-status": "Progressing", "pending": "Progressing", "running": "Progressing",
        "succeeded": "Healthy", "failed": "Degraded", "invalid": "Degraded",
    },
}  # fmt: skip
CASES = [(kind, state) for kind, states in HEALTH.items() for state in states]


def _health(kind: str, body: dict[str, Any]) -> dict[str, str]:
    result: dict[str, str] = lua.run((KIND_DIR / kind / "health.lua").read_text(), body)
    return result


@pytest.mark.parametrize(("kind", "state"), CASES)
def test_each_state_shows_its_health(kind: str, state: str) -> None:
    body = samples.SAMPLES[kind]()[state]
    assert _health(kind, body)["status"] == HEALTH[kind][state]


def test_every_state_the_samples_build_has_a_claim() -> None:
    assert {k: set(v) for k, v in HEALTH.items()} == {
        kind: set(build()) for kind, build in samples.SAMPLES.items()
    }


def test_a_degraded_policy_or_rollback_says_why() -> None:
    policy = _health("RollbackPolicy", samples.policies()["metrics-unreachable"])
    assert policy["message"].startswith("MetricsUnreachable: Cannot query http://prometheus")
    rollback = _health("Rollback", samples.rollbacks()["failed-traffic-stopped"])
    assert "resume-traffic" in rollback["message"]


@pytest.mark.parametrize("kind", list(HEALTH))
def test_the_shipped_testdata_is_what_the_operator_writes(kind: str) -> None:
    shipped = {p: p.read_text() for p in (KIND_DIR / kind / "testdata").glob("*.yaml")}
    assert shipped == samples.testdata(kind), "run: python -m tests.gitops.samples --write"


@pytest.mark.parametrize("kind", list(HEALTH))
def test_argo_cd_style_health_tests_pass(kind: str) -> None:
    """health_test.yaml, in Argo CD's format, is what its own test harness would run."""
    listed = yaml.safe_load((KIND_DIR / kind / "health_test.yaml").read_text())["tests"]
    assert len(listed) == len(HEALTH[kind])
    for case in listed:
        body = yaml.safe_load((KIND_DIR / kind / case["inputPath"]).read_text())
        assert _health(kind, body) == case["healthStatus"], case["inputPath"]


def _discover(body: dict[str, Any]) -> dict[str, bool]:
    script = (KIND_DIR / "Rollback" / "actions" / "discovery.lua").read_text()
    return {name: spec["disabled"] for name, spec in lua.run(script, body).items()}


def _act(action: str, body: dict[str, Any]) -> dict[str, Any]:
    script = (KIND_DIR / "Rollback" / "actions" / action / "action.lua").read_text()
    result: dict[str, Any] = lua.run(script, body)
    return result


@pytest.mark.parametrize(
    ("state", "enabled"),
    [
        ("awaiting-approval", {"approve", "abort"}),
        ("running", {"abort"}),
        ("queued", {"abort"}),
        ("succeeded", set()),
        ("failed", set()),
        ("failed-traffic-stopped", {"resume-traffic"}),
        ("aborted-traffic-resumed", set()),
    ],
)
def test_actions_are_offered_only_where_they_mean_something(state: str, enabled: set[str]) -> None:
    disabled = _discover(samples.rollbacks()[state])
    assert set(disabled) == {"approve", "abort", "resume-traffic"}
    assert {name for name, off in disabled.items() if not off} == enabled


def test_approve_sets_the_annotation_the_operator_waits_for_and_is_then_offered_no_more() -> None:
    body = samples.rollbacks()["awaiting-approval"]
    approved = _act("approve", body)
    who = approved["metadata"]["annotations"][ANNOTATION + "approved-by"]
    assert who == "system:serviceaccount:argocd:argocd-server"
    assert approved["spec"] == body["spec"]
    assert _discover(approved)["approve"] is True


@pytest.mark.parametrize(("action", "key"), [("abort", "abort"),
                                             ("resume-traffic", "resume-traffic")])  # fmt: skip
def test_abort_and_resume_traffic_set_their_annotation_and_keep_the_others(
    action: str, key: str
) -> None:
    body = samples.rollbacks()["failed-traffic-stopped"]
    body["metadata"]["annotations"] = {"team": "web"}
    done = _act(action, body)
    assert done["metadata"]["annotations"] == {"team": "web", ANNOTATION + key: "true"}
    assert _discover(done)[action] is True


@pytest.mark.parametrize("path", list(argocd_cm.RENDERED))
def test_the_installable_argocd_cm_files_hold_the_current_scripts(path: Path) -> None:
    assert path.read_text() == argocd_cm.RENDERED[path](), (
        "run: python -m tests.gitops.argocd_cm --write"
    )


def test_the_argocd_cm_patch_holds_a_health_check_per_kind_and_the_rollback_actions() -> None:
    data = yaml.safe_load(argocd_cm.PATCH.read_text())["data"]
    health = [f"resource.customizations.health.rollback.mindmate.app_{k}" for k in HEALTH]
    assert set(data) == {*health, "resource.customizations.actions.rollback.mindmate.app_Rollback"}
    actions = yaml.safe_load(data["resource.customizations.actions.rollback.mindmate.app_Rollback"])
    names = [d["name"] for d in actions["definitions"]]
    assert names == ["abort", "approve", "resume-traffic"]
    body = samples.rollbacks()["awaiting-approval"]
    assert lua.run(actions["discovery.lua"], body)["approve"]["disabled"] is False
