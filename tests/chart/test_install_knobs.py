"""The chart with every knob, installed by the real helm on a real API server, and the roles it
gives people, checked by that server's RBAC as a user bound to each.

No controller-manager runs on the test server, so Kubernetes' view and edit roles aggregate
nothing here (their labels are checked in `test_chart_knobs.py`); these tests bind a user to
the chart's roles directly and ask the server what the user may do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.apiserver.server import KubeApiServer
from tests.chart import helm
from tests.chart.conftest import FENCED, KNOBS

pytestmark = pytest.mark.e2e
USER = "alice"
NAMESPACE = "prod"
KINDS = ("rollbacks", "rollbackpolicies", "restorepoints")


def _bind(server: KubeApiServer, role: str) -> None:
    server.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    server.kubectl("create", "rolebinding", f"{USER}-{role}", "-n", NAMESPACE,
                   f"--clusterrole=rollback-operator-{role}", f"--user={USER}")  # fmt: skip


def _may(server: KubeApiServer, verb: str, resource: str) -> bool:
    """Whether the server lets USER do `verb` on `resource` ("kind" or "kind/subresource"; our
    kinds in their API group, core otherwise), asked as USER with a SelfSubjectAccessReview,
    which needs no CRD to be installed."""
    kind, _, sub = resource.partition("/")
    attributes = {"namespace": NAMESPACE, "verb": verb, "resource": kind, "subresource": sub,
                  "group": "rollback.mindmate.app" if kind in KINDS else ""}  # fmt: skip
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attributes}}  # fmt: skip
    done = server.kubectl("create", "--validate=false", "-f", "-", "-o", "json",
                          stdin=json.dumps(review),
                          kubeconfig=server.user_kubeconfig(USER))  # fmt: skip
    allowed: bool = json.loads(done.stdout)["status"]["allowed"]
    return allowed


def test_every_knob_installs_and_each_object_is_created(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    values = {**KNOBS, **FENCED, "namespaceOverride": "ops-tools"}
    fresh_apiserver.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ops-tools"}}
    )
    rendered = helm.install(fresh_apiserver, values, tmp_path)

    for kind in ("Deployment", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"):
        name = rendered.one(kind)["metadata"]["name"]
        found = fresh_apiserver.kubectl("get", kind.lower(), name, "-n", "ops-tools", check=False)
        assert found.returncode == 0, (kind, found.stderr)
    assert not fresh_apiserver.kubectl("get", "deployment", "-n", helm.NAMESPACE).stdout


def test_a_viewer_reads_everything_and_changes_nothing(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    helm.install(fresh_apiserver, {}, tmp_path)
    _bind(fresh_apiserver, "view")

    for resource in KINDS:
        assert _may(fresh_apiserver, "list", resource)
        assert not _may(fresh_apiserver, "create", resource)
        assert not _may(fresh_apiserver, "patch", resource)
    assert _may(fresh_apiserver, "get", "rollbacks/status")


def test_an_editor_writes_policies_and_rollbacks_but_never_their_status(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    helm.install(fresh_apiserver, {}, tmp_path)
    _bind(fresh_apiserver, "edit")

    for resource in KINDS:
        for verb in ("create", "patch", "delete"):
            assert _may(fresh_apiserver, verb, resource), (verb, resource)
    assert not _may(fresh_apiserver, "patch", "rollbacks/status")


def test_an_approver_patches_rollbacks_and_may_not_create_one(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    helm.install(fresh_apiserver, {}, tmp_path)
    _bind(fresh_apiserver, "approve")

    assert _may(fresh_apiserver, "patch", "rollbacks")
    assert _may(fresh_apiserver, "list", "rollbackpolicies")
    assert not _may(fresh_apiserver, "create", "rollbacks")
    assert not _may(fresh_apiserver, "patch", "rollbackpolicies")
    assert not _may(fresh_apiserver, "get", "secrets")
