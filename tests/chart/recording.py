"""Run the operator exactly as the chart configures it, with its ServiceAccount's token, on a
real API server that enforces RBAC, and record every call it makes.

The RBAC tests need two facts: that the chart's RBAC is sufficient (the server refused none of
the operator's calls: a 403 fails the test) and that it is no more than needed (every grant
used). So this installs the chart with the real helm into a server of its own, starts the
operator outside the cluster with the rendered Deployment's environment and a kubeconfig
holding a token the TokenRequest API issued for the chart's ServiceAccount, and drives it
through everything it does in production, while the server's audit log records each call and
its answer (`tests/apiserver/audit.py`):

- kopf's start-up: discovery, CRD and (for a namespace list) namespace observation, peering on
  the object the chart created (a replica that cannot see it stays paused and the run fails);
- a policy with a breaching rule, read from a real Prometheus: status patches and Events, an
  automatic quick Rollback created by the operator, run with the real Vercel and Railway
  adapters (their token Secrets are read) to a report ConfigMap;
- a manual full Rollback (database and storage on the file-backed fakes), approved, whose
  report ConfigMap already exists (its own, owned by the Rollback: a retry after a crash), so
  the operator takes its create-conflict-patch path;
- a RestorePoint the policy's schedule took before, then `restorePoints` (every minute, keep
  one): the schedule creates a point, the operator takes it and `keep` deletes the older one;
- SIGTERM: kopf removes itself from the peering object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from rollback_operator.api import API_VERSION, POLICY_LABEL, TRIGGER_LABEL
from sandbox import manifests
from sandbox.fakes.memory import FakeWorld
from sandbox.fakes.saas import Saas, serving
from sandbox.services import free_port, stop_process
from sandbox.services.prometheus import PrometheusServer
from tests.apiserver import audit
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import REPO_ROOT, KubeApiServer
from tests.chart import helm
from tests.metrics.world import Series

RELEASE_NAMESPACE = helm.NAMESPACE
ROLLBACKS = "rollback.mindmate.app/v1alpha1/rollbacks"
POLICIES = "rollback.mindmate.app/v1alpha1/rollbackpolicies"
TERMINAL = {"Succeeded", "Failed", "PartiallyFailed", "Aborted"}
APPROVED_BY = "rollback.mindmate.app/approved-by"


@dataclass
class Recording:
    """What one run left behind: the release, the operator's calls as the server answered
    them, the rollbacks it ran and its log."""

    rendered: helm.Rendered
    user: str  # the operator's identity: its ServiceAccount
    calls: list[audit.Call]
    rollbacks: dict[str, dict[str, Any]]
    log: str
    server: KubeApiServer  # stopped once the module's tests are done


def record(
    server: KubeApiServer, workdir: Path, values: dict[str, Any], prometheus: PrometheusServer
) -> Recording:
    """Install the chart with `values` into `server`, run the scenario with the chart's
    ServiceAccount, return what happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    rendered = helm.install(server, values, workdir)
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    user = f"system:serviceaccount:{RELEASE_NAMESPACE}:{account}"
    kubeconfig = server.service_account_kubeconfig(RELEASE_NAMESPACE, account)
    namespace = (values.get("watchNamespaces") or ["prod"])[0]
    kube = KubeNamespace(server, workdir / "kube", namespace)
    with serving(history=3) as saas:
        log, listed = _drive(kube, rendered, kubeconfig, saas, prometheus, workdir)
    rollbacks = {r["metadata"]["name"]: r for r in listed}
    return Recording(rendered, user, audit.calls(server.audit_log, user), rollbacks, log, server)


def operator_env(rendered: helm.Rendered, kubeconfig: Path, health_port: int) -> dict[str, str]:
    """The container's env from the rendered Deployment, fit for a local process.

    Only what cannot hold outside a pod changes: the ports (free ones here), POD_ID (the pod's
    name from the downward API), the kubeconfig (a pod uses its ServiceAccount's token) and the
    allowed endpoints (the fakes listen on loopback).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLBACK_OPERATOR_")}
    for name, value in rendered.env().items():
        if isinstance(value, dict):
            assert value == {"fieldRef": {"fieldPath": "metadata.name"}}, (name, value)
            value = "rollback-operator-5d8f7c9b6-x2x4q"
        env[name] = value
    env.update(
        ROLLBACK_OPERATOR_KUBECONFIG=str(kubeconfig),
        ROLLBACK_OPERATOR_LIVENESS_ENDPOINT=f"http://127.0.0.1:{health_port}/healthz",
        ROLLBACK_OPERATOR_METRICS_PORT=str(free_port()),
        ROLLBACK_OPERATOR_POLL_INTERVAL="0.05",
        ROLLBACK_OPERATOR_ALLOWED_ENDPOINTS="http://127.0.0.1",  # the fakes
        ROLLBACK_OPERATOR_STEP_BASE_DELAY="0.05",
        ROLLBACK_OPERATOR_STEP_MAX_DELAY="0.2",
    )
    return env


def _drive(
    kube: KubeNamespace,
    rendered: helm.Rendered,
    kubeconfig: Path,
    saas: Saas,
    prometheus: PrometheusServer,
    workdir: Path,
) -> tuple[str, list[dict[str, Any]]]:
    """The operator's log, and the Rollbacks as they were once both had ended."""
    world = workdir / "world.json"
    FakeWorld(path=world).save()
    health_port = free_port()
    log_path = workdir / "operator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.chart.operator_run", "--world", str(world)],
            cwd=REPO_ROOT,
            env=operator_env(rendered, kubeconfig, health_port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    clusterwide = not rendered.values.get("watchNamespaces")
    watched = None if clusterwide else kube.namespace
    try:
        for resource in (ROLLBACKS, POLICIES):
            kube.wait_for_watch(resource, namespace=watched, timeout=30)
        _wait(lambda: _healthy(health_port), "kopf's health endpoint", log_path)
        listed = _scenario(kube, saas, prometheus, log_path)
    finally:
        stop_process(process, timeout=20)
    return log_path.read_text(), listed


def _rollbacks(kube: KubeNamespace) -> list[dict[str, Any]]:
    listed = kube.kubectl("get", "rollbacks.rollback.mindmate.app", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def _scenario(
    kube: KubeNamespace, saas: Saas, prometheus: PrometheusServer, log_path: Path
) -> list[dict[str, Any]]:
    """A breach and its automatic rollback, a manual full rollback, then `historyLimit: 0`
    deletes the finished automatic one; the Rollbacks as they were before that."""

    def apply(manifest: dict[str, Any]) -> None:
        manifest["metadata"]["namespace"] = kube.namespace
        kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))

    def rollbacks() -> list[dict[str, Any]]:
        return _rollbacks(kube)

    def ended(name: str) -> bool:
        found = [r for r in rollbacks() if r["metadata"]["name"] == name]
        return bool(found) and found[0].get("status", {}).get("phase") in TERMINAL

    series = Series(prometheus)
    now = datetime.now(UTC)
    series.gauge("errors", now - timedelta(minutes=10), now, lambda _: 0.08)
    for secret in saas.secrets():
        apply(secret)
    rule = {"name": "api-errors", "query": f'errors{{test="{series.label}"}}',
            "critical": {"above": 0.05}, "for": "1m", "autoRollback": True}  # fmt: skip
    policy = saas.policy()
    policy["spec"].update(
        metrics={"prometheus": {"url": prometheus.url}}, evaluationInterval="1s", rules=[rule]
    )
    apply(policy)
    automatic = _wait(rollbacks, "an automatic Rollback", log_path)[0]["metadata"]["name"]
    _wait(lambda: ended(automatic), f"the end of {automatic}", log_path)
    # the report of an earlier attempt: the operator's own ConfigMap, owned by the Rollback
    apply(manifests.rollback("manual", mode="full", requireApproval=True))
    waiting = _wait(lambda: [r for r in rollbacks() if r["metadata"]["name"] == "manual"
                             and r.get("status", {}).get("phase") == "AwaitingApproval"],
                    "the manual Rollback awaiting approval", log_path)[0]  # fmt: skip
    owner = {
        "apiVersion": "rollback.mindmate.app/v1alpha1",
        "kind": "Rollback",
        "name": "manual",
        "uid": waiting["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    report = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "manual-report", "ownerReferences": [owner]},
              "data": {"report.md": "earlier attempt"}}  # fmt: skip
    apply(report)
    approval = f"{APPROVED_BY}=admin"  # the admin's own name, as the chart's admission policy wants
    kube.kubectl("annotate", "rollbacks.rollback.mindmate.app/manual", approval)
    _wait(lambda: ended("manual"), "the end of the manual Rollback", log_path)
    _wait(lambda: _report(kube) != "earlier attempt", "the report", log_path)
    listed = rollbacks()
    limit = json.dumps({"spec": {"historyLimit": 0}})
    kube.kubectl("patch", "rollbackpolicies.rollback.mindmate.app", policy["metadata"]["name"],
                 "--type=merge", "-p", limit)  # fmt: skip
    gone = f"{automatic} deleted by historyLimit 0"
    _wait(lambda: all(r["metadata"]["name"] != automatic for r in rollbacks()), gone, log_path)
    _restore_points(kube, apply, policy["metadata"]["name"], log_path)
    return listed


POINTS = "restorepoints.rollback.mindmate.app"


def _restore_points(
    kube: KubeNamespace, apply: Callable[[dict[str, Any]], None], policy: str, log_path: Path
) -> None:
    """The policy's schedule takes a RestorePoint and `keep` deletes an older scheduled one."""
    labels = {TRIGGER_LABEL: "schedule", POLICY_LABEL: policy}
    spec = {"policyRef": {"name": policy}}
    apply({"apiVersion": API_VERSION, "kind": "RestorePoint", "spec": spec,
           "metadata": {"name": "scheduled-before", "labels": labels}})  # fmt: skip

    def phases() -> dict[str, str]:
        items = json.loads(kube.kubectl("get", POINTS, "-o", "json").stdout)["items"]
        return {p["metadata"]["name"]: p.get("status", {}).get("phase", "") for p in items}

    _wait(lambda: phases().get("scheduled-before") == "Succeeded", "a RestorePoint", log_path)
    every_minute = json.dumps({"spec": {"restorePoints": {"schedule": "* * * * *",
                                                          "keep": {"count": 1}}}})  # fmt: skip
    kube.kubectl("patch", "rollbackpolicies.rollback.mindmate.app", policy, "--type=merge",
                 "-p", every_minute)  # fmt: skip

    def kept_only_the_scheduled_one() -> bool:
        found = phases()
        return list(found.values()) == ["Succeeded"] and "scheduled-before" not in found

    _wait(kept_only_the_scheduled_one, "a scheduled RestorePoint, the older deleted", log_path,
          timeout=100)  # fmt: skip


def _report(kube: KubeNamespace) -> str:
    found = kube.kubectl("get", "configmap", "manual-report", "-o", "json")
    text: str = json.loads(found.stdout)["data"]["report.md"]
    return text


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(check: Callable[[], Any], what: str, log_path: Path, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s\n{log_path.read_text()[-4000:]}")
        time.sleep(0.1)
    return found
