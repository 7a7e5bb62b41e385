"""`kubectl rollback policy ...` and shell completion, on a real API server.

The policy commands read the rule states the operator writes into status (written here through
the status subresource, as the operator does) and flip `spec.suspend`; completion goes through
kubectl itself, which runs `kubectl_complete-rollback`, and through bash with the script that
`completion bash` prints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import manifests
from tests.apiserver.server import KUBECTL, KubeApiServer

BIN = Path(sys.executable).parent
RULES = [
    {"name": "api-error-rate", "query": "vector(0.07)", "warning": {"above": 0.02},
     "critical": {"above": 0.05}, "for": "5m", "autoRollback": True},
    {"name": "cache-hit-rate", "query": "vector(0.9)", "warning": {"below": 0.85}},
]  # fmt: skip
STATES = [
    {"name": "api-error-rate", "state": "Pending", "value": 0.07,
     "since": "2026-01-01T00:00:00Z", "lastEvaluated": "2026-01-01T00:01:00Z"},
    {"name": "cache-hit-rate", "state": "Ok", "value": 0.9,
     "lastEvaluated": "2026-01-01T00:01:00Z"},
]  # fmt: skip


def run(server: KubeApiServer, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl rollback ARGS` in `namespace`, as kubectl runs the plugin from PATH."""
    env = {**os.environ, "KUBECONFIG": str(server.admin_kubeconfig)}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    assert KUBECTL is not None
    argv = [KUBECTL, "rollback", "-n", namespace, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def policy(apiserver_with_crds: KubeApiServer, apiserver_namespace: str) -> str:
    """Policy `mindmate` in the test's namespace, with two rules and their states in status."""
    metrics = {"prometheus": {"url": "http://prometheus.monitoring:9090"}}
    body = manifests.policy(namespace=apiserver_namespace, rules=RULES, metrics=metrics)
    body["metadata"]["labels"] = {"kustomize.toolkit.fluxcd.io/name": "apps"}
    apiserver_with_crds.apply(body)
    status = json.dumps({"status": {"rules": STATES, "breachingRules": 0}})
    apiserver_with_crds.kubectl(
        "patch", "rollbackpolicy", "mindmate", "-n", apiserver_namespace,
        "--subresource=status", "--type=merge", "-p", status,
    )  # fmt: skip
    return apiserver_namespace


def test_policy_show_puts_each_rule_state_beside_its_thresholds(
    apiserver_with_crds: KubeApiServer, policy: str
) -> None:
    shown = run(apiserver_with_crds, policy, "policy", "show", "mindmate")

    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line.split() for line in shown.stdout.splitlines() if line}
    assert lines["api-error-rate"][1:8] == ["Pending", "0.07", ">", "0.02", ">", "0.05", "5m"]
    assert lines["cache-hit-rate"][1:6] == ["Ok", "0.9", "<", "0.85", "-"]
    assert "automatic rollbacks allowed" in shown.stdout


def test_policy_list_and_show_print_json(apiserver_with_crds: KubeApiServer, policy: str) -> None:
    listed = json.loads(run(apiserver_with_crds, policy, "policy", "list", "-o", "json").stdout)
    shown = json.loads(
        run(apiserver_with_crds, policy, "policy", "show", "mindmate", "-o", "json").stdout
    )

    assert [item["metadata"]["name"] for item in listed["items"]] == ["mindmate"]
    held = shown["status"]["rules"]
    assert [{key: rule[key] for key in want} for rule, want in zip(held, STATES, strict=True)] == (
        STATES
    )


def test_suspend_and_resume_set_spec_suspend_and_warn_of_the_gitops_tool(
    apiserver_with_crds: KubeApiServer, policy: str
) -> None:
    suspended = run(apiserver_with_crds, policy, "policy", "suspend", "mindmate")
    after_suspend = run(apiserver_with_crds, policy, "policy", "list")
    resumed = run(apiserver_with_crds, policy, "policy", "resume", "mindmate")
    after_resume = run(apiserver_with_crds, policy, "policy", "show", "mindmate", "-o", "json")

    assert suspended.returncode == 0, suspended.stderr
    row = re.split(r"\s{2,}", after_suspend.stdout.splitlines()[1])
    assert row[:3] == ["mindmate", "yes", "1 Ok, 1 Pending"]
    assert "kustomize.toolkit.fluxcd.io/name" in suspended.stderr
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(after_resume.stdout)["spec"]["suspend"] is False


def test_kubectl_completes_commands_and_policy_names_through_the_plugin(
    apiserver_with_crds: KubeApiServer, policy: str
) -> None:
    env = {**os.environ, "KUBECONFIG": str(apiserver_with_crds.admin_kubeconfig)}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    assert KUBECTL is not None

    def complete(*words: str) -> list[str]:
        argv = [KUBECTL, "__complete", "rollback", "-n", policy, *words]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        return done.stdout.splitlines()

    assert complete("st") == ["start", "status", ":4"]
    assert complete("policy", "su") == ["suspend", ":4"]
    assert complete("policy", "show", "") == ["mindmate", ":4"]
    assert complete("plan", "mindmate", "--mode", "") == ["quick", "full", ":4"]


def test_the_bash_script_completes_rollback_names(
    apiserver_with_crds: KubeApiServer, policy: str
) -> None:
    apiserver_with_crds.apply(manifests.rollback("quick-1", namespace=policy))
    script = run(apiserver_with_crds, policy, "completion", "bash").stdout
    probe = (
        f"{script}\nCOMP_WORDS=(kubectl-rollback -n {policy} status q); COMP_CWORD=4\n"
        "_kubectl_rollback; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    env = {**os.environ, "KUBECONFIG": str(apiserver_with_crds.admin_kubeconfig)}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"

    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env)

    assert done.stdout.split() == ["quick-1"], done.stderr


def test_the_zsh_script_completes_policy_names(
    apiserver_with_crds: KubeApiServer, policy: str
) -> None:
    script = run(apiserver_with_crds, policy, "completion", "zsh").stdout
    probe = (  # compdef and compadd exist only inside zsh's completion system: stand-ins
        "compdef() { :; }\ncompadd() { shift; print -l ${(P)1}; }\n"
        f"{script}\nwords=(kubectl-rollback -n {policy} policy show m); CURRENT=6\n"
        "_kubectl_rollback\n"
    )
    env = {**os.environ, "KUBECONFIG": str(apiserver_with_crds.admin_kubeconfig)}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"

    done = subprocess.run(["zsh", "-f", "-c", probe], capture_output=True, text=True, env=env)

    assert done.stdout.split() == ["mindmate"], done.stderr
