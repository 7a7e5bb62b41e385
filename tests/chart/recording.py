"""Record every call the operator makes, running exactly as the chart configures it.

The RBAC tests need the set of (verb, resource) pairs the operator really uses. A list kept by
hand drifts; so this installs the chart into an emulated cluster whose audit log is on
(`sandbox/kube/audit.py`), starts the operator with the rendered Deployment's environment and its
own identity (a kubeconfig whose token names the chart's ServiceAccount), and drives it
through everything it does in production:

- kopf's start-up: discovery, CRD and (for a namespace list) namespace observation, peering on
  the object the chart created (a replica that cannot see it stays paused and the run fails);
- a policy with a breaching rule, read from a real Prometheus: status patches and Events, an
  automatic Rollback created by the operator, run with the real Vercel and Railway adapters
  (their token Secrets are read) to a report ConfigMap;
- a manual Rollback whose report ConfigMap already exists (a retry after a crash), so the
  operator takes its create-conflict-patch path;
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

from sandbox import manifests
from sandbox.fakes.memory import FakeWorld
from sandbox.fakes.saas import Saas, serving
from sandbox.kube import audit
from sandbox.kube.cluster import REPO_ROOT, EmulatedCluster
from sandbox.services import free_port, stop_process
from sandbox.services.prometheus import PrometheusServer
from tests.chart import helm
from tests.metrics.world import Series

RELEASE_NAMESPACE = "operators"
ROLLBACKS = "rollback.mindmate.app/v1alpha1/rollbacks"
POLICIES = "rollback.mindmate.app/v1alpha1/rollbackpolicies"
TERMINAL = {"Succeeded", "Failed", "PartiallyFailed", "Aborted"}


@dataclass
class Recording:
    """What one run left behind."""

    rendered: helm.Rendered
    user: str  # the operator's identity in the audit log
    entries: list[audit.Entry]
    log: str

    def calls(self) -> list[audit.Entry]:
        """The operator's own requests."""
        return [e for e in self.entries if e.user == self.user]


def record(workdir: Path, values: dict[str, Any], prometheus: PrometheusServer) -> Recording:
    """Install the chart with `values`, run the scenario, return the operator's requests."""
    workdir.mkdir(parents=True, exist_ok=True)
    audit_log = workdir / "audit.jsonl"
    os.environ[audit.ENV] = str(audit_log)  # the emulator process inherits it
    try:
        cluster = EmulatedCluster(workdir / "cluster").start()
    finally:
        del os.environ[audit.ENV]
    try:
        rendered = helm.install(cluster, values, namespace=RELEASE_NAMESPACE)
        account = rendered.one("ServiceAccount")["metadata"]["name"]
        user = f"system:serviceaccount:{RELEASE_NAMESPACE}:{account}"
        kubeconfig = _kubeconfig_for(cluster, user)
        namespace = (values.get("watchNamespaces") or ["default"])[0]
        with serving(history=3) as saas:
            log = _drive(cluster, rendered, kubeconfig, saas, prometheus, namespace, workdir)
    finally:
        cluster.stop()
    return Recording(rendered, user, audit.read(audit_log), log)


def _kubeconfig_for(cluster: EmulatedCluster, user: str) -> Path:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"]["token"] = user
    path = cluster.workdir / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def operator_env(rendered: helm.Rendered, kubeconfig: Path, health_port: int) -> dict[str, str]:
    """The container's env from the rendered Deployment, fit for a local process.

    Only what cannot hold outside a pod changes: the ports (free ones here), POD_ID (the pod's
    name from the downward API) and the kubeconfig (a pod uses its ServiceAccount's token).
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
        ROLLBACK_OPERATOR_STEP_BASE_DELAY="0.05",
        ROLLBACK_OPERATOR_STEP_MAX_DELAY="0.2",
    )
    return env


def _drive(
    cluster: EmulatedCluster,
    rendered: helm.Rendered,
    kubeconfig: Path,
    saas: Saas,
    prometheus: PrometheusServer,
    namespace: str,
    workdir: Path,
) -> str:
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
    watched = None if clusterwide else namespace
    try:
        for resource in (ROLLBACKS, POLICIES):
            cluster.wait_for_watch(resource, namespace=watched, timeout=30)
        _wait(lambda: _healthy(health_port), "kopf's health endpoint", log_path)
        _scenario(cluster, saas, prometheus, namespace, log_path)
    finally:
        stop_process(process, timeout=20)
    return log_path.read_text()


def _scenario(
    cluster: EmulatedCluster,
    saas: Saas,
    prometheus: PrometheusServer,
    namespace: str,
    log_path: Path,
) -> None:
    def apply(manifest: dict[str, Any]) -> None:
        manifest["metadata"]["namespace"] = namespace
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))

    def rollbacks() -> list[dict[str, Any]]:
        listed = cluster.kubectl("get", "rollbacks.rollback.mindmate.app", "-n", namespace,
                                 "-o", "json").stdout  # fmt: skip
        items: list[dict[str, Any]] = json.loads(listed)["items"]
        return items

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
    report = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "manual-report"},
              "data": {"report.md": "earlier attempt"}}  # fmt: skip
    apply(report)
    apply(manifests.rollback("manual"))
    _wait(lambda: ended("manual"), "the end of the manual Rollback", log_path)
    _wait(lambda: _report(cluster, namespace) != "earlier attempt", "the report", log_path)


def _report(cluster: EmulatedCluster, namespace: str) -> str:
    found = cluster.kubectl("get", "configmap", "manual-report", "-n", namespace, "-o", "json")
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
