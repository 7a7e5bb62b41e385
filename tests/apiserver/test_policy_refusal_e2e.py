"""An automatic rollback the API server refuses is said on the policy, not only in a log line.

The real operator process (`rollback-operator run`), the real API server and a real
Prometheus: a policy's rule has been critical for longer than its `for`, and a
ValidatingAdmissionPolicy (a change freeze) refuses the Rollback the policy creates. The
policy turns `Stalled` with reason `RollbackRefused`, naming the refusal, with one Event, and
counts it; no Rollback exists.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import manifests
from sandbox.services import free_port
from sandbox.services.prometheus import PrometheusServer
from tests.apiserver.operator_cli import (
    OperatorRun,
    apply_printed_crds,
    condition,
    events,
    get,
    wait_for,
)
from tests.apiserver.server import KubeApiServer
from tests.apiserver.test_apiserver import eventually
from tests.metrics.world import Series, minutes

pytestmark = pytest.mark.e2e
FROZEN = "automatic rollbacks are frozen during the change window"
TRIGGERED_BY_POLICY = (
    "has(object.metadata.labels) && "
    "'rollback.mindmate.app/trigger' in object.metadata.labels && "
    "object.metadata.labels['rollback.mindmate.app/trigger'] == 'policy'"
)


def change_freeze(name: str, namespace: str) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy refusing Rollbacks created by a policy, in one namespace."""
    rules = [{"apiGroups": ["rollback.mindmate.app"], "apiVersions": ["v1alpha1"],
              "operations": ["CREATE"], "resources": ["rollbacks"]}]  # fmt: skip
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules},
            "validations": [{"expression": f"!({TRIGGERED_BY_POLICY})", "message": FROZEN}],
        },
    }
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": selector},
        },
    }
    return [policy, binding]


def _freeze_holds(server: KubeApiServer, namespace: str) -> None:
    probe = manifests.rollback("probe", namespace)
    probe["metadata"]["labels"] = {"rollback.mindmate.app/trigger": "policy"}
    document = yaml.safe_dump(probe)

    def attempt() -> subprocess.CompletedProcess[str]:
        argv = ("create", "--dry-run=server", "-f", "-")
        return server.kubectl(*argv, stdin=document, check=False)

    refused = eventually(attempt, lambda done: FROZEN in done.stderr)
    assert FROZEN in refused.stderr, refused.stderr


def test_a_rollback_refused_by_admission_stalls_the_policy_with_an_event(
    apiserver: KubeApiServer,
    apiserver_namespace: str,
    prometheus: PrometheusServer,
    tmp_path: Path,
) -> None:
    namespace, series = apiserver_namespace, Series(prometheus)
    apply_printed_crds(apiserver)
    apiserver.apply(*change_freeze(f"freeze-{namespace}", namespace))
    _freeze_holds(apiserver, namespace)
    now = datetime.now(UTC)
    series.gauge("g", now - minutes(10), now + minutes(5), lambda t: 0.08)
    rule = {"name": "api-errors", "query": f'g{{test="{series.label}"}}',
            "critical": {"above": 0.05}, "for": "1m", "autoRollback": True}  # fmt: skip
    policy = manifests.policy(
        "mindmate", namespace,
        metrics={"prometheus": {"url": prometheus.url}}, evaluationInterval="1s", rules=[rule],
    )  # fmt: skip
    # One namespace, standalone, ports of its own: other tests share this API server and host.
    run = OperatorRun(
        ["run", "--namespace", namespace, "--kubeconfig", str(apiserver.admin_kubeconfig),
         "--standalone", "--liveness", f"http://127.0.0.1:{free_port()}/healthz",
         "--metrics-port", "0"],
        tmp_path / "operator.log",
    )  # fmt: skip
    try:
        apiserver.apply(policy)

        def stalled() -> dict[str, Any] | None:
            found = condition(get(apiserver, "rollbackpolicy", "mindmate", namespace), "Stalled")
            return found if found and found["reason"] == "RollbackRefused" else None

        refused = wait_for(stalled, "Stalled/RollbackRefused on the policy", run)
        assert refused["status"] == "True"
        assert FROZEN in refused["message"]
        notes = [e for e in events(apiserver, namespace, "mindmate")
                 if e["reason"] == "RollbackRefused"]  # fmt: skip
        assert len(notes) == 1, notes
        assert notes[0]["type"] == "Warning"
        assert FROZEN in notes[0]["message"]
        status = get(apiserver, "rollbackpolicy", "mindmate", namespace)["status"]
        assert status["suppressed"] == {"RollbackRefused": 1}
        listed = apiserver.kubectl("get", "rollbacks", "-n", namespace, "-o", "name")
        assert listed.stdout.strip() == ""
    finally:
        run.stop()
        apiserver.kubectl("delete", "validatingadmissionpolicybinding", f"freeze-{namespace}")
