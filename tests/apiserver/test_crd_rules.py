"""What the operator's models refuse, a real API server refuses too, naming the field.

The CRDs that `rollback-operator crds` prints carry the models' cross-field checks as CEL rules
(`rollback_operator.api.cel`). Here a real kube-apiserver holds them (installing them at all
proves their rules fit the server's CEL cost budget), every invalid manifest of
`tests.invalid_manifests` that the table says the server refuses is refused by it, naming the
case's field, and manifests that use those rules rightly are admitted.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
import yaml

from rollback_operator.api import API_VERSION
from sandbox import manifests
from tests.apiserver.server import REPO_ROOT, KubeApiServer
from tests.invalid_manifests import ALL_CASES, Case

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))
PROM = {"prometheus": {"url": "http://prometheus.monitoring:9090"}}


@pytest.fixture(scope="module")
def server(apiserver: KubeApiServer) -> KubeApiServer:
    """The session's API server with the CRDs `rollback-operator crds` prints, established."""
    printed = subprocess.run(
        [sys.executable, "-m", "rollback_operator", "crds"],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT,
    )  # fmt: skip
    apiserver.kubectl("apply", "--server-side", "-f", "-", stdin=printed.stdout)
    names = [f"crd/{crd['metadata']['name']}" for crd in yaml.safe_load_all(printed.stdout)]
    apiserver.kubectl("wait", "--for=condition=Established", "--timeout=30s", *names)
    return apiserver


def _in(namespace: str, manifest: dict[str, Any], name: str) -> dict[str, Any]:
    placed = copy.deepcopy(manifest)
    placed["metadata"] = {**placed.get("metadata", {}), "name": name, "namespace": namespace}
    return placed


def _dry_run(server: KubeApiServer, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """`kubectl apply --dry-run=server`: every check of a real apply, nothing stored."""
    document = yaml.safe_dump(manifest)
    return server.kubectl("apply", "--dry-run=server", "-f", "-", stdin=document, check=False)


REFUSED = [pytest.param(c, id=c.id) for c in ALL_CASES if c.schema]


@pytest.mark.parametrize("case", REFUSED)
def test_the_api_server_refuses_each_invalid_manifest_naming_its_field_once(
    server: KubeApiServer, apiserver_namespace: str, case: Case
) -> None:
    refused = _dry_run(server, _in(apiserver_namespace, case.manifest, "bad"))
    assert refused.returncode != 0, f"admitted: {refused.stdout}"
    assert case.field in refused.stderr, refused.stderr
    assert "spec.spec" not in refused.stderr


def test_a_quick_automatic_rollback_of_the_database_is_refused_where_it_is_written(
    server: KubeApiServer, apiserver_namespace: str
) -> None:
    policy = manifests.policy(automaticRollback={"mode": "quick", "targets": ["database"]})
    refused = _dry_run(server, _in(apiserver_namespace, policy, "quick-database"))
    assert refused.returncode != 0
    assert "spec.automaticRollback.targets" in refused.stderr
    assert "use mode: full" in refused.stderr


def _rule(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "query": "up", "for": "1m", **fields}


def test_a_policy_using_every_cross_field_rule_rightly_is_admitted_and_stored(
    server: KubeApiServer, apiserver_namespace: str
) -> None:
    policy = manifests.policy(
        metrics=PROM,
        evaluationInterval="15s",
        rules=[
            _rule("errors", warning={"above": 0.02}, critical={"above": 0.05}, autoRollback=True),
            _rule("cache", warning={"below": 0.85}, critical={"below": 0.8}),
            _rule("latency", warning={"above": 2}),
        ],
        automaticRollback={"mode": "full", "targets": ["database", "backend"], "cooldown": "1h"},
    )
    server.apply(_in(apiserver_namespace, policy, "every-rule"))
    stored = server.kubectl("get", "rollbackpolicy", "every-rule", "-n", apiserver_namespace)
    assert "every-rule" in stored.stdout


def test_a_full_rollback_pinning_every_layer_is_admitted(
    server: KubeApiServer, apiserver_namespace: str
) -> None:
    pins = {
        "frontend": {"deploymentId": "dpl_1"},
        "backend": {"deploymentId": "d-1"},
        "database": {"backup": "b.dump"},
        "storage": {"asOf": "2024-01-01T00:00:00Z"},
    }
    rollback = manifests.rollback(mode="full", to=pins)
    admitted = _dry_run(server, _in(apiserver_namespace, rollback, "pinned"))
    assert admitted.returncode == 0, admitted.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_examples_are_admitted(
    server: KubeApiServer, apiserver_namespace: str, path: Any
) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        if not document or document.get("apiVersion") != API_VERSION:
            continue
        name = document["metadata"]["name"]
        admitted = _dry_run(server, _in(apiserver_namespace, document, name))
        assert admitted.returncode == 0, admitted.stderr
